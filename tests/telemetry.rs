//! Telemetry end to end, in a test binary of its own because it installs
//! the global subscriber: spans reach a real OTLP collector, and the
//! shutdown flush completes on a single-threaded runtime, where a blocking
//! flush would deadlock (the exporter needs that very thread).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use resilient_catalog::telemetry::{self, TelemetryConfig};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, transport::Server};

#[derive(Clone, Default)]
struct Collector {
    span_names: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut names = self.span_names.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                names.extend(scope.spans.into_iter().map(|span| span.name));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

// `tokio::test` runs on a current-thread runtime: one thread for the
// collector, the exporter and the test itself.
#[tokio::test]
async fn shutdown_flushes_queued_spans_on_a_single_threaded_runtime() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::default();
    tokio::spawn(
        Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let telemetry = telemetry::init(&TelemetryConfig {
        service_name: "telemetry-test".into(),
        otlp_endpoint: Some(endpoint),
    })
    .expect("telemetry starts");
    tracing::info_span!("queued", otel.name = "queued work").in_scope(|| {
        tracing::info!("inside the span");
    });

    // The batch processor would export only after its 5s delay; the
    // shutdown must flush now, and must not hang.
    tokio::time::timeout(Duration::from_secs(20), telemetry.shutdown())
        .await
        .expect("the shutdown flush completes");
    assert_eq!(*collector.span_names.lock().unwrap(), ["queued work"]);
}
