//! What every gRPC listener of ours has: the trace layer, `grpc.health.v1`,
//! reflection in both versions and a graceful shutdown. One place, so that
//! the backend's listener and the gateway's two cannot drift apart.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{service::Routes, transport::Server};
use tonic_health::ServingStatus;

use crate::{reflection, telemetry};

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
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    announced: &[Announced],
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for service in announced {
        health
            .set_service_status(service.name, ServingStatus::Serving)
            .await;
    }
    let descriptor_sets: Vec<_> = announced.iter().map(|s| s.descriptor_set).collect();

    Server::builder()
        .layer(telemetry::server_layer())
        .add_routes(routes)
        .add_service(health_service)
        .add_service(reflection::v1(&descriptor_sets))
        .add_service(reflection::v1alpha(&descriptor_sets))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
