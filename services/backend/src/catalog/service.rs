//! `catalog.v1.CatalogService` answered from a [`Catalog`], after counting
//! the call and injecting the faults in force.

use std::sync::Arc;

use resilient_catalog::{
    proto::catalog::v1::{
        GetProductRequest, GetProductResponse, ListProductsRequest, ListProductsResponse,
        catalog_service_server::CatalogService,
    },
    validate,
};
use tonic::{Request, Response, Status};

use super::{CallCounter, Catalog, page_token};
use crate::chaos::Faults;

/// Serves `catalog.v1.CatalogService` from a catalog, with faults.
#[derive(Clone, Debug)]
pub struct CatalogApi {
    /// The products served; shared, never changed.
    catalog: Arc<Catalog>,
    /// The faults every call suffers before it is answered.
    faults: Faults,
    /// Counts every call that reaches this service.
    calls: CallCounter,
}

impl CatalogApi {
    /// Serves `catalog`, suffering `faults` and counting into `calls`.
    pub fn new(catalog: Arc<Catalog>, faults: Faults, calls: CallCounter) -> Self {
        Self {
            catalog,
            faults,
            calls,
        }
    }

    /// What every call goes through first: it is counted, even if it then
    /// fails, and it suffers the faults, even if it is invalid, as a real
    /// failing backend would not look at the request first.
    async fn admit(&self) -> Result<(), Status> {
        self.calls.record();
        self.faults.inject().await
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        self.admit().await?;
        let id = &request.get_ref().id;
        validate::product_id(id)?;
        let product = self
            .catalog
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no product has the id {id:?}")))?;
        Ok(Response::new(GetProductResponse {
            product: Some(product.clone()),
        }))
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        self.admit().await?;
        let request = request.get_ref();
        let size = validate::page_size(request.page_size)?;
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(page_token::decode(token).ok_or_else(|| {
                Status::invalid_argument("page_token is not one this service issued")
            })?),
        };

        let page = self.catalog.page(after.as_deref(), size);
        let next_page_token = match page.products.last() {
            Some(last) if page.more => page_token::encode(&last.id),
            _ => String::new(),
        };
        Ok(Response::new(ListProductsResponse {
            products: page.products.to_vec(),
            next_page_token,
        }))
    }
}
