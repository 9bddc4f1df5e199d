//! `catalog.v1.CatalogService` as the gateway serves it: each method checks
//! its request, then makes a resilient call to the same method of the
//! backend.

use resilient_catalog::{
    proto::catalog::v1::{
        GET_PRODUCT_PATH, GetProductRequest, GetProductResponse, LIST_PRODUCTS_PATH,
        ListProductsRequest, ListProductsResponse, catalog_service_client::CatalogServiceClient,
        catalog_service_server::CatalogService,
    },
    validate,
};
use tonic::{Request, Response, Status};
use tower::service_fn;

use crate::{backend::BackendChannel, fallback::Fallback};

/// The gateway's catalog: the backend's, made resilient.
#[derive(Clone, Debug)]
pub(crate) struct CatalogProxy {
    pub(crate) backend: CatalogServiceClient<BackendChannel>,
    pub(crate) fallback: Fallback,
}

#[tonic::async_trait]
impl CatalogService for CatalogProxy {
    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        // Bad input is refused here, so it gets the same answer whether
        // the backend is up or down.
        validate::product_id(&request.get_ref().id)
            .map_err(|status| self.fallback.refuse(GET_PRODUCT_PATH, status))?;
        let backend = self.backend.clone();
        let call = service_fn(move |request| {
            let mut backend = backend.clone();
            async move { backend.get_product(request).await }
        });
        self.fallback.call(GET_PRODUCT_PATH, request, call).await
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        validate::page_size(request.get_ref().page_size)
            .map_err(|status| self.fallback.refuse(LIST_PRODUCTS_PATH, status))?;
        let backend = self.backend.clone();
        let call = service_fn(move |request| {
            let mut backend = backend.clone();
            async move { backend.list_products(request).await }
        });
        self.fallback.call(LIST_PRODUCTS_PATH, request, call).await
    }
}
