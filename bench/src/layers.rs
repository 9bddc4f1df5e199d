//! gRPC-shaped calls through the layers every listener adds, for the
//! `layers` bench and the `layer_instructions` example: a service that
//! answers at once with `grpc-status: 0` in its trailers, a request with a
//! `grpc-timeout`, and a loop that reads each answer to its end.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt as _, Full};
use resilient_catalog::{
    deadline::DeadlineLayer,
    proto::catalog::v1::{FILE_DESCRIPTOR_SET, catalog_service_server::SERVICE_NAME},
    telemetry::metrics::{KnownMethods, RpcMetricsLayer},
    unknown_method::UnknownMethodLayer,
};
use tower::{Layer as _, Service, ServiceBuilder, ServiceExt as _};

/// The body of every answer: a message, then the trailers.
pub type AnswerBody = tonic::body::Body;

/// A service that answers at once, `grpc-status: 0` in its trailers, its
/// body as tonic's (what `DeadlineLayer` wraps).
pub fn answering()
-> impl Service<Request<()>, Response = Response<AnswerBody>, Error = Infallible> + Clone {
    ServiceBuilder::new()
        .map_response(|response: Response<_>| response.map(tonic::body::Body::new))
        .service(tower::service_fn(|_: Request<()>| async {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let body = Full::new(Bytes::from_static(b"answer"))
                .with_trailers(async { Some(Ok(trailers)) });
            Ok::<_, Infallible>(Response::new(body))
        }))
}

/// `answering` behind `RpcMetricsLayer::server`, for the catalog's methods.
pub fn with_metrics() -> impl Service<
    Request<()>,
    Response = Response<impl http_body::Body<Data = Bytes, Error = tonic::Status>>,
    Error = Infallible,
> + Clone {
    RpcMetricsLayer::server(catalog_methods()).layer(answering())
}

/// `answering` behind `DeadlineLayer`.
pub fn with_deadline()
-> impl Service<Request<()>, Response = Response<AnswerBody>, Error = Infallible> + Clone {
    DeadlineLayer.layer(answering())
}

/// `answering` behind `UnknownMethodLayer`, for the catalog's methods: the
/// cost of a call to a method that is served.
pub fn with_unknown_method()
-> impl Service<Request<()>, Response = Response<AnswerBody>, Error = Infallible> + Clone {
    UnknownMethodLayer::new(catalog_methods()).layer(answering())
}

/// The catalog's methods, as a listener that serves the catalog knows them.
fn catalog_methods() -> KnownMethods {
    KnownMethods::of([(SERVICE_NAME, FILE_DESCRIPTOR_SET)])
}

/// A `GetProduct` call with a 5 s deadline.
pub fn request() -> Request<()> {
    Request::post("/catalog.v1.CatalogService/GetProduct")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("grpc-timeout", "5S")
        .body(())
        .expect("a valid request")
}

/// Makes `calls` calls through `service`, each read to its end.
pub async fn call<S, B>(service: S, calls: u64)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    for _ in 0..calls {
        let response = service.clone().oneshot(request()).await.unwrap();
        std::hint::black_box(response.into_body().collect().await.unwrap());
    }
}
