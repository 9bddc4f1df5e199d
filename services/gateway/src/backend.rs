//! The connection to the backend: one HTTP/2 channel, made lazily so the
//! gateway starts (and serves from cache) while the backend is down,
//! traced so the backend's spans join the caller's trace, and timed in
//! `rpc_client_call_duration_seconds`.

use std::time::Duration;

use http::Uri;
use resilient_catalog::{
    proto::catalog::v1::{FILE_DESCRIPTOR_SET, catalog_service_server::SERVICE_NAME},
    telemetry::{
        ClientTraceLayer, client_layer,
        metrics::{KnownMethods, RpcMetrics, RpcMetricsLayer},
    },
};
use tonic::transport::{Channel, Endpoint};
use tower::Layer as _;

/// The channel to the backend, with the client trace and metrics layers
/// around it.
pub type BackendChannel = <ClientTraceLayer as tower::Layer<RpcMetrics<Channel>>>::Service;

/// A channel to `url` that connects on first use and reconnects after
/// failures on its own.
pub(crate) fn channel(url: &Uri, timeout: Duration) -> BackendChannel {
    let channel = Endpoint::from(url.clone())
        // A backend that does not accept is a failure within the budget.
        .connect_timeout(timeout.min(Duration::from_secs(1)))
        .tcp_nodelay(true)
        // Finds a dead connection (a backend that vanished without closing
        // it) before a call waits on it for a whole budget.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .connect_lazy();
    // Inside the trace layer: the histogram times the call itself.
    let metrics = RpcMetricsLayer::client(KnownMethods::of([(SERVICE_NAME, FILE_DESCRIPTOR_SET)]));
    client_layer(url).layer(metrics.layer(channel))
}
