//! What every gRPC listener of ours has: the trace and metrics layers,
//! `grpc.health.v1`, reflection in both versions and a graceful shutdown;
//! and, on admin listeners, `/metrics` for Prometheus. One place, so that
//! the listeners of the backend and the gateway cannot drift apart.

use std::future::Future;

use axum::{http::header, routing::get};
use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::{
    deadline::DeadlineLayer,
    reflection,
    telemetry::{
        self,
        metrics::{KnownMethods, MetricsEndpoint, RpcMetricsLayer},
    },
    unknown_method::UnknownMethodLayer,
};

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A service as health checks and reflection announce it.
#[derive(Clone, Copy, Debug)]
pub struct Announced {
    /// The fully-qualified service name, for example
    /// `catalog.v1.CatalogService`: health reports it `SERVING`.
    pub name: &'static str,
    /// The encoded descriptors of its proto package: reflection describes
    /// them.
    pub descriptor_set: &'static [u8],
}

/// Serves `routes` on `listener` until `shutdown` completes; then stops
/// accepting, lets the calls in flight finish, and returns.
///
/// Besides `routes`, the listener serves `grpc.health.v1.Health`, which
/// reports the server (`""`) and each `announced` service `SERVING`, and
/// reflection (`grpc.reflection.v1` and `v1alpha`) over the `announced`
/// descriptors only, so a listener never describes what it does not serve.
/// With `metrics`, it also serves `GET /metrics` over HTTP/1.1 and h2c.
/// Every gRPC call is traced and counted in
/// `rpc_server_call_duration_seconds`, and a call to a method the listener
/// does not serve is answered `UNIMPLEMENTED` with a message that says so.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    announced: &[Announced],
    metrics: Option<MetricsEndpoint>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for service in announced {
        health
            .set_service_status(service.name, ServingStatus::Serving)
            .await;
    }
    let descriptor_sets: Vec<_> = announced.iter().map(|s| s.descriptor_set).collect();
    let methods = KnownMethods::of(
        announced
            .iter()
            .map(|service| (service.name, service.descriptor_set))
            .chain([
                (
                    "grpc.health.v1.Health",
                    tonic_health::pb::FILE_DESCRIPTOR_SET,
                ),
                (
                    "grpc.reflection.v1.ServerReflection",
                    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                ),
                (
                    "grpc.reflection.v1alpha.ServerReflection",
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                ),
            ]),
    );
    let (routes, accept_http1) = match metrics {
        // Prometheus scrapes over HTTP/1.1.
        Some(endpoint) => (with_metrics(routes, endpoint), true),
        None => (routes, false),
    };

    Server::builder()
        .accept_http1(accept_http1)
        .layer(telemetry::server_layer())
        .layer(RpcMetricsLayer::server(methods.clone()))
        .layer(DeadlineLayer)
        // Innermost, so that the layers above trace and count the refusal.
        .layer(UnknownMethodLayer::new(methods))
        .add_routes(routes)
        .add_service(health_service)
        .add_service(reflection::v1(&descriptor_sets))
        .add_service(reflection::v1alpha(&descriptor_sets))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
}

/// The connections `listener` accepts, with `TCP_NODELAY` set as tonic sets
/// it on the listeners it binds itself. Without it, a response written in
/// pieces (headers, then body and trailers) waits for the peer's delayed
/// ACK, 40 ms on Linux, whenever calls overlap on a connection: the gateway
/// served 546 calls/s at 16 concurrent calls, 9 000 with it (BENCHMARKS.md).
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// `routes`, and `GET /metrics` rendering `endpoint`.
fn with_metrics(routes: Routes, endpoint: MetricsEndpoint) -> Routes {
    let metrics = move || {
        let endpoint = endpoint.clone();
        async move { ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], endpoint.render()) }
    };
    Routes::from(routes.into_axum_router().route("/metrics", get(metrics)))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpStream;
    use tokio_stream::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_to_coalesce_small_writes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut incoming = incoming(listener);
        let _client = TcpStream::connect(address).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set");
    }
}
