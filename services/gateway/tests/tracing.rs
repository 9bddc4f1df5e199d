//! One request is one trace, across both services: the real binaries export
//! to a test OTLP collector (the tonic server from `opentelemetry-proto`).

mod support;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use resilient_catalog::proto::backend::v1::{
    SetFaultsRequest, chaos_service_client::ChaosServiceClient,
};
use resilient_catalog::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use support::{channel, free_port, get_product, meta, process::Process};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, transport::Server};

/// Keeps every span it receives, with the `service.name` that sent it.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| string_attribute(&resource.attributes, "service.name"))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Some(AnyValue {
                value: Some(Value::StringValue(value)),
            }) => Some(value.clone()),
            _ => None,
        })
}

async fn start_collector() -> (SocketAddr, Collector) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    tokio::spawn(
        Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, collector)
}

#[tokio::test]
async fn one_request_is_one_trace_across_gateway_and_backend() {
    let (collector_addr, collector) = start_collector().await;
    let endpoint = format!("http://{collector_addr}");
    let otlp = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];

    let backend_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut backend = Process::spawn(
        "backend",
        &[
            "--listen",
            &backend_addr.to_string(),
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &otlp,
    );
    backend.wait_healthy(backend_addr).await;

    let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let mut gateway = Process::spawn(
        "gateway",
        &[
            "--listen",
            &public.to_string(),
            "--admin-listen",
            &admin,
            "--backend-url",
            &format!("http://{backend_addr}"),
            "--volume-threshold",
            "2",
        ],
        &otlp,
    );
    gateway.wait_healthy(public).await;

    let mut catalog = CatalogServiceClient::new(channel(public));
    catalog.get_product(get_product("sku-1001")).await.unwrap();
    // Then the backend fails: the second call is answered stale, and it
    // opens the circuit (1 failure in 2 calls).
    ChaosServiceClient::new(channel(backend_addr))
        .set_faults(SetFaultsRequest {
            error_rate: 1.0,
            ..SetFaultsRequest::default()
        })
        .await
        .unwrap();
    let stale = catalog.get_product(get_product("sku-1001")).await.unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));

    // A graceful stop flushes the spans still queued.
    assert!(gateway.terminate().await.success(), "{}", gateway.output());
    assert!(backend.terminate().await.success(), "{}", backend.output());
    let spans = collector.spans.lock().unwrap().clone();

    let named = |service: &str, name: &str, kind: SpanKind| -> Vec<&Span> {
        spans
            .iter()
            .filter(|(s, span)| s == service && span.name == name && span.kind() == kind)
            .map(|(_, span)| span)
            .collect()
    };
    const METHOD: &str = "catalog.v1.CatalogService/GetProduct";
    let gateway_servers = named("gateway", METHOD, SpanKind::Server);
    assert_eq!(gateway_servers.len(), 2, "{spans:#?}");

    // The first request: gateway server -> gateway client -> backend
    // server, all in one trace, and the cache write in it too.
    let first = gateway_servers
        .iter()
        .find(|span| string_attribute(&span.attributes, "cache.status").as_deref() == Some("miss"))
        .expect("the first request's span");
    let trace = &first.trace_id;
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|(_, span)| &span.trace_id == trace)
        .collect();
    let client = in_trace
        .iter()
        .find(|(s, span)| s == "gateway" && span.kind() == SpanKind::Client && span.name == METHOD)
        .map(|(_, span)| span)
        .expect("the gateway's client span in the same trace");
    assert_eq!(
        client.parent_span_id, first.span_id,
        "the client span is a child of the server span"
    );
    assert_eq!(
        string_attribute(&client.attributes, "rpc.system.name").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        string_attribute(&client.attributes, "rpc.response.status_code").as_deref(),
        Some("OK")
    );

    let backend_server = in_trace
        .iter()
        .find(|(s, span)| s == "backend" && span.kind() == SpanKind::Server)
        .map(|(_, span)| span)
        .expect("the backend's server span in the same trace");
    assert_eq!(backend_server.name, METHOD);
    assert_eq!(
        backend_server.parent_span_id, client.span_id,
        "the backend's server span is a child of the gateway's client span"
    );
    assert!(
        in_trace
            .iter()
            .any(|(s, span)| s == "gateway" && span.name == "cache.set"),
        "the cache write belongs to the request's trace: {in_trace:#?}"
    );

    // The second request: answered stale, with the breaker's decision on
    // its span, and the circuit's opening logged with its trace id.
    let second = gateway_servers
        .iter()
        .find(|span| string_attribute(&span.attributes, "cache.status").as_deref() == Some("stale"))
        .expect("the stale request's span");
    assert_ne!(
        &second.trace_id, trace,
        "each request is a trace of its own"
    );
    let attributes: HashMap<_, _> = second
        .attributes
        .iter()
        .filter_map(|kv| {
            Some((
                kv.key.as_str(),
                string_attribute(std::slice::from_ref(kv), &kv.key)?,
            ))
        })
        .collect();
    assert_eq!(
        attributes.get("circuit.decision").map(String::as_str),
        Some("admitted")
    );
    assert_eq!(
        attributes.get("circuit.state").map(String::as_str),
        Some("open")
    );
    assert!(
        second
            .events
            .iter()
            .any(|event| event.name.contains("circuit opened")),
        "the transition is an event on the span: {second:#?}"
    );
    assert!(
        spans.iter().any(|(s, span)| s == "gateway"
            && span.trace_id == second.trace_id
            && span.name == "cache.get"),
        "the cache lookup belongs to the stale request's trace"
    );
    let trace_id = hex(&second.trace_id);
    let log = gateway.output();
    assert!(
        log.lines().any(|line| line.contains("circuit opened")
            && line.contains(&format!("trace_id={trace_id}"))),
        "the log line carries the trace id {trace_id}:\n{log}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
