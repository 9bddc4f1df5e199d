//! The catalog gateway: `catalog.v1.CatalogService` in front of the backend,
//! through a circuit breaker per method, with a last-known-good cache that
//! answers when the backend cannot.
//!
//! # Layout
//!
//! * [`config`]: the flags, each with an environment variable, validated at
//!   start-up.
//! * `proxy`: the catalog methods; each checks its request and makes a
//!   resilient call.
//! * `fallback`: the resilient call itself: a fresh cached answer, or one
//!   backend call shared by identical requests, through circuit and budget,
//!   and the last known good answer when those fail.
//! * `backend`: the traced, lazily connected channel to the backend.
//! * `budget`: the gateway's time limit on one backend call.
//! * `metadata`: `x-cache`, `x-cache-age` and `x-circuit-state`.
//! * `status`: the `UNAVAILABLE` a caller gets when nothing can answer.
//! * `admin`: `gateway.v1.CircuitAdminService` and `CacheAdminService`, on
//!   the admin listener only.
//! * `metrics`: the circuits, answers and cache, read at each scrape of
//!   the admin listener's `/metrics`.
//!
//! [`Gateway::serve`] runs both listeners until its shutdown future
//! completes; the binary and the tests start it the same way.

mod admin;
mod backend;
mod budget;
pub mod config;
mod fallback;
mod metadata;
mod metrics;
mod proxy;
mod status;

use std::{future::Future, sync::Arc, time::Duration};

use resilient_catalog::{
    breaker::CircuitRegistry,
    cache::{CacheError, LastKnownGood},
    coalesce::Coalescer,
    proto::{
        catalog::v1::{
            self as catalog, GET_PRODUCT_PATH, LIST_PRODUCTS_PATH,
            catalog_service_client::CatalogServiceClient,
            catalog_service_server::{self, CatalogServiceServer},
        },
        gateway::v1::{
            self as admin_proto,
            cache_admin_service_server::{self, CacheAdminServiceServer},
            circuit_admin_service_server::{self, CircuitAdminServiceServer},
        },
        schema_version,
    },
    server::{self, Announced},
    telemetry::metrics::PrometheusHandle,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use backend::BackendChannel;
pub use config::Config;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `--redis-url` was refused.
    #[error("--redis-url: {0}")]
    Redis(#[source] CacheError),
    /// The flags do not work together.
    #[error(transparent)]
    Config(#[from] config::InvalidConfig),
}

/// A gateway ready to serve.
#[derive(Debug)]
pub struct Gateway {
    proxy: proxy::CatalogProxy,
    /// What the admin listener serves on `/metrics`, if anything.
    metrics: Option<PrometheusHandle>,
}

impl Gateway {
    /// Builds the gateway from its configuration: the circuits, the cache
    /// (Redis if `--redis-url` is set, else in process) and the channel to
    /// the backend. Nothing is connected yet: the backend and Redis may be
    /// down, and come up later.
    ///
    /// Call it inside the Tokio runtime.
    pub fn new(config: &Config) -> Result<Self, StartError> {
        config.validate()?;
        let circuits = Arc::new(
            CircuitRegistry::new(config.breaker(), config.max_circuits as usize)
                .map_err(|error| config::InvalidConfig::from(error.to_string()))?,
        );
        // The circuits exist from the start, so operators see them all
        // before the first call.
        for method in [GET_PRODUCT_PATH, LIST_PRODUCTS_PATH] {
            circuits.circuit(method);
        }
        // Answers are keyed under the catalog contract's schema version:
        // a deploy that changes its messages starts with new keys.
        let cache_config = config.cache(&schema_version(catalog::FILE_DESCRIPTOR_SET));
        let cache = match &config.redis_url {
            Some(url) => LastKnownGood::redis(url, &config.redis(), &cache_config)
                .map_err(StartError::Redis)?,
            None => LastKnownGood::in_memory(&cache_config),
        };
        let channel = backend::channel(&config.backend_url, config.timeout());
        Ok(Self {
            proxy: proxy::CatalogProxy {
                backend: CatalogServiceClient::new(channel),
                fallback: fallback::Fallback {
                    circuits,
                    failures: config.failure_codes,
                    cache,
                    timeout: config.timeout(),
                    reserve: config.fallback_reserve(),
                    windows: Arc::new(config.windows()),
                    negative_ttl: config.negative_ttl(),
                    revalidate: config.cache_stale_while_revalidate,
                    coalescer: Arc::new(Coalescer::new(
                        usize::try_from(config.coalesce_max_in_flight).unwrap_or(usize::MAX),
                    )),
                    counters: Arc::default(),
                },
            },
            metrics: None,
        })
    }

    /// Serves Prometheus metrics on the admin listener's `/metrics`: those
    /// `handle` records (see [`telemetry::metrics::install`]), and the
    /// circuits, answers and cache of this gateway.
    ///
    /// [`telemetry::metrics::install`]: resilient_catalog::telemetry::metrics::install
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The last-known-good cache.
    pub fn cache(&self) -> &LastKnownGood {
        &self.proxy.fallback.cache
    }

    /// The circuits, one per backend method.
    pub fn circuits(&self) -> &Arc<CircuitRegistry> {
        &self.proxy.fallback.circuits
    }

    /// Serves the catalog on `public` and the circuit administration on
    /// `admin` (each with health and reflection, and `/metrics` on `admin`
    /// if [`Gateway::with_metrics`] asked for it) until `shutdown`
    /// completes; then stops accepting, lets the calls in flight finish,
    /// waits for pending cache writes and returns.
    pub async fn serve(
        self,
        public: TcpListener,
        admin: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });

        let cache = self.proxy.fallback.cache.clone();
        // Lookups fail at once while Redis is disconnected: give it a
        // moment to connect, so the first answers can come from it. A Redis
        // that is down does not hold the gateway back longer than that.
        if !cache.wait_until_connected(Duration::from_secs(1)).await {
            tracing::warn!("Redis is not reachable yet; serving without it until it is");
        }
        let public = self.public_server(public, stop.clone());
        let admin = self.admin_server(admin, stop.clone());
        let result = tokio::try_join!(public, admin).map(|_| ());
        cache.flush().await;
        cache.close().await;
        result
    }

    async fn public_server(
        &self,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        server::serve(
            listener,
            Routes::new(CatalogServiceServer::new(self.proxy.clone())),
            &[Announced {
                name: catalog_service_server::SERVICE_NAME,
                descriptor_set: catalog::FILE_DESCRIPTOR_SET,
            }],
            None,
            stop.cancelled_owned(),
        )
        .await
    }

    async fn admin_server(
        &self,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        let circuits = admin::CircuitAdmin {
            circuits: Arc::clone(&self.proxy.fallback.circuits),
        };
        let cache = admin::CacheAdmin {
            fallback: self.proxy.fallback.clone(),
        };
        let metrics = self
            .metrics
            .clone()
            .map(|handle| metrics::endpoint(handle, &self.proxy.fallback));
        server::serve(
            listener,
            Routes::new(CircuitAdminServiceServer::new(circuits))
                .add_service(CacheAdminServiceServer::new(cache)),
            &[
                Announced {
                    name: circuit_admin_service_server::SERVICE_NAME,
                    descriptor_set: admin_proto::FILE_DESCRIPTOR_SET,
                },
                Announced {
                    name: cache_admin_service_server::SERVICE_NAME,
                    descriptor_set: admin_proto::FILE_DESCRIPTOR_SET,
                },
            ],
            metrics,
            stop.cancelled_owned(),
        )
        .await
    }
}
