//! Tower layers that give every gRPC call a span named and described by the
//! OpenTelemetry RPC conventions, and carry the W3C trace context from
//! client to server so that both ends of a call share one trace.
//!
//! The spans come from tower-http's `TraceLayer`, whose gRPC classifier
//! reads the status where gRPC puts it: in the headers of a trailers-only
//! response, or in the trailers after the body. The span stays open until
//! the body ends, so it measures the whole call.

use std::{
    any::Any,
    error::Error as StdError,
    fmt,
    num::NonZeroI32,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response};
use opentelemetry::trace::{TraceContextExt as _, TraceId};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tonic::{Code, TimeoutExpired};
use tower::{Layer, Service, layer::util::Stack};
use tower_http::{
    classify::{
        ClassifiedResponse, ClassifyResponse, GrpcCode, GrpcEosErrorsAsFailures,
        GrpcErrorsAsFailures, GrpcFailureClass, SharedClassifier,
    },
    trace::{MakeSpan, OnEos, OnFailure, OnResponse, TraceLayer},
};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::grpc_code;

/// tower-http's trace layer, set up for one side of a gRPC call.
pub type RpcTraceLayer = TraceLayer<
    SharedClassifier<RpcClassifier>,
    RpcSpan,
    (),
    RecordStatus,
    (),
    RecordStatus,
    RecordStatus,
>;

/// The server-side layer: one `SERVER` span per call, child of the caller's
/// span when the request carries a `traceparent`.
pub type ServerTraceLayer = RpcTraceLayer;

/// The client-side layer: one `CLIENT` span per call, whose context goes out
/// in the `traceparent` header.
pub type ClientTraceLayer = Stack<InjectTraceContextLayer, RpcTraceLayer>;

/// Traces the calls a server receives.
///
/// Only the codes that mean the server failed mark the span as an error;
/// a caller's mistake such as `NOT_FOUND` is the server doing its job, as
/// the gRPC semantic conventions say.
pub fn server_layer() -> ServerTraceLayer {
    let server_failures = [
        Code::Unknown,
        Code::DeadlineExceeded,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
    ];
    let classifier = (1..=16)
        .map(Code::from_i32)
        .filter(|code| !server_failures.contains(code))
        .fold(GrpcErrorsAsFailures::new(), |classifier, code| {
            classifier.with_success(GrpcCode::from(code as i32))
        });
    trace_layer(classifier, RpcSpan::Server)
}

/// Traces the calls a client makes to `target` and sends their context
/// along. Every status but `OK` marks a client span as an error.
pub fn client_layer(target: &http::Uri) -> ClientTraceLayer {
    let span = RpcSpan::Client {
        address: target.host().unwrap_or_default().to_owned(),
        port: target.port_u16().unwrap_or(match target.scheme_str() {
            Some("https") => 443,
            _ => 80,
        }),
    };
    Stack::new(
        InjectTraceContextLayer,
        trace_layer(GrpcErrorsAsFailures::new(), span),
    )
}

fn trace_layer(classifier: GrpcErrorsAsFailures, span: RpcSpan) -> RpcTraceLayer {
    TraceLayer::new(SharedClassifier::new(RpcClassifier(classifier)))
        .make_span_with(span)
        .on_request(())
        .on_response(RecordStatus)
        .on_body_chunk(())
        .on_eos(RecordStatus)
        .on_failure(RecordStatus)
}

/// tower-http's gRPC classifier, with errors below gRPC told apart.
///
/// tower-http turns such an error into its text alone, and tonic's is
/// "transport error" whatever the cause. The commonest cause is benign: the
/// deadline the request carries ran out, which tonic's client reports as an
/// error rather than a status. That case is classified as the
/// `DEADLINE_EXCEEDED` it is; the others keep their whole source chain.
#[derive(Clone, Debug, Default)]
pub struct RpcClassifier(GrpcErrorsAsFailures);

impl ClassifyResponse for RpcClassifier {
    type FailureClass = GrpcFailureClass;
    type ClassifyEos = GrpcEosErrorsAsFailures;

    fn classify_response<B>(
        self,
        response: &Response<B>,
    ) -> ClassifiedResponse<Self::FailureClass, Self::ClassifyEos> {
        self.0.classify_response(response)
    }

    fn classify_error<E>(self, error: &E) -> Self::FailureClass
    where
        E: fmt::Display + 'static,
    {
        let mut message = error.to_string();
        let mut source = (error as &dyn Any)
            .downcast_ref::<tonic::transport::Error>()
            .and_then(StdError::source);
        while let Some(cause) = source {
            if cause.is::<TimeoutExpired>() {
                return GrpcFailureClass::Code(
                    NonZeroI32::new(Code::DeadlineExceeded as i32).expect("not OK"),
                );
            }
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        GrpcFailureClass::Error(message)
    }
}

/// Makes the span of one call.
#[derive(Clone, Debug)]
pub enum RpcSpan {
    /// A call received; its parent comes from the request's headers.
    Server,
    /// A call made to a server at this address and port.
    Client {
        /// `server.address`.
        address: String,
        /// `server.port`.
        port: u16,
    },
}

impl<B> MakeSpan<B> for RpcSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        // `rpc.method` is the fully-qualified method, for example
        // `catalog.v1.CatalogService/GetProduct`, and names the span.
        let method = request.uri().path().trim_start_matches('/');
        match self {
            // A scrape of `/metrics` on an admin listener is not a call
            // anyone wants to see in Jaeger.
            RpcSpan::Server if !super::metrics::is_grpc(request.headers()) => Span::none(),
            RpcSpan::Server => {
                let span = tracing::info_span!(
                    "grpc.server",
                    otel.name = method,
                    otel.kind = "server",
                    rpc.method = method,
                    rpc.response.status_code = Empty,
                    otel.status_code = Empty,
                    otel.status_description = Empty,
                    error.type = Empty,
                    trace_id = Empty,
                );
                let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                    propagator.extract(&HeaderExtractor(request.headers()))
                });
                // Fails only when the span is disabled, and then there is
                // no trace to join.
                let _ = span.set_parent(parent);
                span.set_attribute("rpc.system.name", "grpc");
                // Log lines inside the call carry the trace id, so a log
                // line leads to its trace.
                let trace_id = span.context().span().span_context().trace_id();
                if trace_id != TraceId::INVALID {
                    span.record("trace_id", tracing::field::display(trace_id));
                }
                span
            }
            RpcSpan::Client { address, port } => {
                let span = tracing::info_span!(
                    "grpc.client",
                    otel.name = method,
                    otel.kind = "client",
                    rpc.method = method,
                    rpc.response.status_code = Empty,
                    otel.status_code = Empty,
                    otel.status_description = Empty,
                    error.type = Empty,
                );
                // Attributes that log lines need not repeat.
                span.set_attribute("rpc.system.name", "grpc");
                span.set_attribute("server.address", address.clone());
                span.set_attribute("server.port", i64::from(*port));
                span
            }
        }
    }
}

/// Records the gRPC status on the span, wherever it arrives, and marks the
/// span as an error when the classifier says the call failed.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordStatus;

impl RecordStatus {
    fn record_code(headers: &HeaderMap, span: &Span) {
        if let Some(code) = headers
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<i32>().ok())
        {
            span.record(
                "rpc.response.status_code",
                grpc_code::name(Code::from_i32(code)),
            );
        }
    }
}

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &Response<B>, _latency: std::time::Duration, span: &Span) {
        // A trailers-only response: the status is in the headers.
        Self::record_code(response.headers(), span);
    }
}

impl OnEos for RecordStatus {
    fn on_eos(self, trailers: Option<&HeaderMap>, _duration: std::time::Duration, span: &Span) {
        if let Some(trailers) = trailers {
            Self::record_code(trailers, span);
        }
    }
}

impl OnFailure<GrpcFailureClass> for RecordStatus {
    /// Marks the span. It logs nothing: whoever made the call handles the
    /// failure and says what it means (the gateway falls back, for one).
    fn on_failure(&mut self, class: GrpcFailureClass, _latency: std::time::Duration, span: &Span) {
        span.record("otel.status_code", "error");
        match class {
            GrpcFailureClass::Code(code) => {
                span.record("error.type", grpc_code::name(Code::from_i32(code.get())));
            }
            GrpcFailureClass::Error(error) => {
                span.record("error.type", "transport");
                span.record("otel.status_description", error);
            }
        }
    }
}

/// Writes the current span's trace context into the request headers
/// (`traceparent`, `tracestate`).
#[derive(Clone, Copy, Debug, Default)]
pub struct InjectTraceContextLayer;

impl<S> Layer<S> for InjectTraceContextLayer {
    type Service = InjectTraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectTraceContext { inner }
    }
}

/// The service of [`InjectTraceContextLayer`].
#[derive(Clone, Debug)]
pub struct InjectTraceContext<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for InjectTraceContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let context = Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(request.headers_mut()));
        });
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::{
        Request as GrpcRequest, Response as GrpcResponse, Status,
        body::Body,
        transport::{Endpoint, Server},
    };
    use tower::ServiceExt as _;

    use super::*;
    use crate::proto::catalog::v1::{
        GetProductRequest, GetProductResponse, ListProductsRequest, ListProductsResponse,
        catalog_service_server::{CatalogService, CatalogServiceServer},
    };

    /// A catalog that never answers in time.
    struct Slow;

    #[tonic::async_trait]
    impl CatalogService for Slow {
        async fn get_product(
            &self,
            _: GrpcRequest<GetProductRequest>,
        ) -> Result<GrpcResponse<GetProductResponse>, Status> {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Err(Status::internal("too late"))
        }

        async fn list_products(
            &self,
            _: GrpcRequest<ListProductsRequest>,
        ) -> Result<GrpcResponse<ListProductsResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
    }

    #[tokio::test]
    async fn a_deadline_that_runs_out_in_the_client_is_deadline_exceeded() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            Server::builder()
                .add_service(CatalogServiceServer::new(Slow))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );

        // tonic's channel enforces the grpc-timeout the request carries,
        // and fails with an error rather than a status.
        let channel = Endpoint::from_shared(url).unwrap().connect_lazy();
        let request = Request::builder()
            .uri("/catalog.v1.CatalogService/GetProduct")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "50m")
            // One empty, uncompressed message.
            .body(Body::new(http_body_util::Full::new(
                bytes::Bytes::from_static(&[0; 5]),
            )))
            .unwrap();
        let error = channel.oneshot(request).await.unwrap_err();
        assert_eq!(error.to_string(), "transport error");

        match RpcClassifier::default().classify_error(&error) {
            GrpcFailureClass::Code(code) => assert_eq!(code.get(), Code::DeadlineExceeded as i32),
            GrpcFailureClass::Error(message) => panic!("not told apart: {message}"),
        }
    }

    #[test]
    fn other_errors_keep_their_text() {
        let class = RpcClassifier::default().classify_error(&"connection refused");
        assert!(
            matches!(class, GrpcFailureClass::Error(message) if message == "connection refused")
        );
    }
}
