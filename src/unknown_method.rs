//! A gRPC call to a method the listener does not serve, answered with
//! `UNIMPLEMENTED` and a message that names the method and what is served.
//!
//! tonic answers such a call with `UNIMPLEMENTED` and an empty message, both
//! for an unknown service (its router's fallback) and for an unknown method
//! of a known one (the generated server). A client built from a newer
//! contract than the server, or one that calls an admin service on the
//! public listener, then learns nothing about why.
//! [`UnknownMethodLayer`] answers first, from the same list of methods the
//! listener's metrics use.

use std::{
    future::{Ready, ready},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, header};
use pin_project_lite::pin_project;
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::telemetry::metrics::KnownMethods;

/// The longest part of a caller's path quoted back in the message.
const QUOTED_PATH_MAX: usize = 200;

/// Answers gRPC calls to methods outside `methods` with `UNIMPLEMENTED`,
/// without calling the service inside; other requests (plain HTTP such as
/// `GET /metrics`) pass.
#[derive(Clone, Debug)]
pub struct UnknownMethodLayer {
    methods: KnownMethods,
    /// The services served, written once for every message.
    served: Arc<str>,
}

impl UnknownMethodLayer {
    /// Refuses every gRPC method that `methods` does not know.
    pub fn new(methods: KnownMethods) -> Self {
        let served = methods.services().collect::<Vec<_>>().join(", ").into();
        Self { methods, served }
    }
}

impl<S> Layer<S> for UnknownMethodLayer {
    type Service = UnknownMethod<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UnknownMethod {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`UnknownMethodLayer`].
#[derive(Clone, Debug)]
pub struct UnknownMethod<S> {
    inner: S,
    layer: UnknownMethodLayer,
}

impl<S, B> Service<Request<B>> for UnknownMethod<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = UnknownMethodFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        if is_grpc(&request) && !self.layer.methods.serves(path) {
            return UnknownMethodFuture::refused(self.refusal(path).into_http());
        }
        UnknownMethodFuture::called(self.inner.call(request))
    }
}

impl<S> UnknownMethod<S> {
    fn refusal(&self, path: &str) -> Status {
        // A URI path is ASCII, so any byte is a character boundary.
        let quoted = match path.get(..QUOTED_PATH_MAX) {
            Some(start) if start.len() < path.len() => format!("{start}…"),
            _ => path.to_owned(),
        };
        Status::unimplemented(format!(
            "this listener has no method {quoted}; it serves {}",
            self.layer.served
        ))
    }
}

/// Whether `request` is a gRPC call (`content-type: application/grpc`,
/// with or without a `+codec` suffix).
fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

pin_project! {
    /// The response future of [`UnknownMethod`].
    pub struct UnknownMethodFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    /// The refusal, or the call.
    #[project = StateProjection]
    enum State<F, E> {
        /// The method is not served: the `UNIMPLEMENTED` answer is ready.
        Refused { answer: Ready<Result<Response<Body>, E>> },
        /// The method is served: the inner service's answer.
        Called {
            #[pin]
            inner: F,
        },
    }
}

impl<F, E> UnknownMethodFuture<F, E> {
    fn refused(answer: Response<Body>) -> Self {
        let answer = ready(Ok(answer));
        Self {
            state: State::Refused { answer },
        }
    }

    fn called(inner: F) -> Self {
        Self {
            state: State::Called { inner },
        }
    }
}

impl<F, E> Future for UnknownMethodFuture<F, E>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Refused { answer } => Pin::new(answer).poll(cx),
            StateProjection::Called { inner } => inner.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt as _;

    use super::*;
    use crate::proto::catalog::v1::{FILE_DESCRIPTOR_SET, catalog_service_server::SERVICE_NAME};

    fn layered() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> {
        let methods = KnownMethods::of([(SERVICE_NAME, FILE_DESCRIPTOR_SET)]);
        UnknownMethodLayer::new(methods).layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Status::ok("").into_http())
        }))
    }

    async fn answer(path: &str, content_type: Option<&str>) -> Status {
        let mut request = Request::builder().uri(path);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = layered().oneshot(request.body(()).unwrap()).await.unwrap();
        Status::from_header_map(response.headers()).expect("a grpc-status header")
    }

    #[tokio::test]
    async fn a_served_method_is_called() {
        let path = format!("/{SERVICE_NAME}/GetProduct");
        let status = answer(&path, Some("application/grpc")).await;
        assert_eq!(status.code(), tonic::Code::Ok);
    }

    #[tokio::test]
    async fn an_unknown_method_or_service_is_named_with_what_is_served() {
        for path in [
            format!("/{SERVICE_NAME}/DeleteProduct"),
            "/gateway.v1.CircuitAdminService/ListCircuits".to_owned(),
        ] {
            for content_type in ["application/grpc", "application/grpc+proto"] {
                let status = answer(&path, Some(content_type)).await;
                assert_eq!(status.code(), tonic::Code::Unimplemented, "{path}");
                assert_eq!(
                    status.message(),
                    format!("this listener has no method {path}; it serves {SERVICE_NAME}"),
                );
            }
        }
    }

    #[tokio::test]
    async fn a_long_path_is_quoted_in_part() {
        let path = format!("/{}", "x".repeat(10_000));
        let status = answer(&path, Some("application/grpc")).await;
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert!(status.message().len() < 300, "{}", status.message());
        assert!(status.message().contains("x…;"), "{}", status.message());
    }

    #[tokio::test]
    async fn plain_http_passes() {
        let status = answer("/metrics", None).await;
        assert_eq!(status.code(), tonic::Code::Ok);
    }
}
