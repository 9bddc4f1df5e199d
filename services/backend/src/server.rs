//! The backend's listener: every service it offers, wired onto one socket,
//! with one shutdown path for the binary and the tests alike.

use std::{future::Future, sync::Arc};

use metrics::{Unit, describe_gauge, gauge};
use resilient_catalog::{
    proto::{
        backend::{
            self,
            v1::chaos_service_server::{self, ChaosServiceServer},
        },
        catalog::{
            self,
            v1::catalog_service_server::{self, CatalogServiceServer},
        },
    },
    server::{self, Announced},
    telemetry::metrics::{MetricsEndpoint, PrometheusHandle},
};
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::{
    catalog::{CallCounter, Catalog, CatalogApi},
    chaos::{ChaosApi, FaultSettings, Faults},
};

/// A catalog backend, ready to serve. Clones share the catalog, the faults
/// and the call count, so a test can keep a clone to watch one that serves.
#[derive(Clone, Debug)]
pub struct Backend {
    /// The products served; shared by every call, never changed.
    catalog: Arc<Catalog>,
    /// The faults in force, shared with the chaos service and with callers
    /// of [`Backend::faults`].
    faults: Faults,
    /// The catalog calls received, for tests that prove the gateway did not
    /// call the backend.
    calls: CallCounter,
}

impl Backend {
    /// A backend that serves `catalog` and starts with `faults`, used as
    /// given: check them first with [`FaultSettings::validate`].
    pub fn new(catalog: Catalog, faults: FaultSettings) -> Self {
        Self {
            catalog: Arc::new(catalog),
            faults: Faults::new(faults),
            calls: CallCounter::default(),
        }
    }

    /// The shared handle to the injected faults: set or read them at run
    /// time; clones share state with the running backend.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// The number of `catalog.v1` calls received so far: every `GetProduct`
    /// and `ListProducts` call that reached the backend, including those
    /// failed by injected faults and invalid ones.
    pub fn catalog_calls(&self) -> u64 {
        self.calls.get()
    }

    /// A handle on the count of [`Backend::catalog_calls`] that outlives
    /// [`Backend::serve`] taking the backend.
    pub fn calls(&self) -> CallCounter {
        self.calls.clone()
    }

    /// The catalog served.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Serves `catalog.v1.CatalogService`, `backend.v1.ChaosService`,
    /// `grpc.health.v1.Health` and server reflection (`grpc.reflection.v1`
    /// and `v1alpha`) on `listener` until `shutdown` completes; then stops
    /// accepting, lets the calls in flight finish, and returns.
    ///
    /// Faults apply to the catalog service only: health, chaos and
    /// reflection always answer at once.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let catalog = CatalogServiceServer::new(CatalogApi::new(
            self.catalog,
            self.faults.clone(),
            self.calls,
        ));
        let chaos = ChaosServiceServer::new(ChaosApi::new(self.faults));

        // Health answers SERVING as soon as the socket accepts: the catalog
        // is loaded by then, and an injected fault is a behaviour under
        // test, not ill health.
        server::serve(
            listener,
            Routes::new(catalog).add_service(chaos),
            &[
                Announced {
                    name: catalog_service_server::SERVICE_NAME,
                    descriptor_set: catalog::v1::FILE_DESCRIPTOR_SET,
                },
                Announced {
                    name: chaos_service_server::SERVICE_NAME,
                    descriptor_set: backend::v1::FILE_DESCRIPTOR_SET,
                },
            ],
            None,
            shutdown,
        )
        .await
    }

    /// Serves `GET /metrics` (what `metrics` recorded, and the faults in
    /// force) and `grpc.health.v1.Health` on `listener` until `shutdown`
    /// completes.
    pub async fn serve_admin(
        &self,
        listener: TcpListener,
        metrics: PrometheusHandle,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let faults = self.faults.clone();
        describe_gauge!(
            "backend_fault_error_rate",
            "The probability that a catalog call fails on purpose (backend.v1.ChaosService)."
        );
        describe_gauge!(
            "backend_fault_latency_seconds",
            Unit::Seconds,
            "The delay added to every catalog call on purpose (backend.v1.ChaosService)."
        );
        let endpoint = MetricsEndpoint::new(metrics).observing(move || {
            let settings = faults.get();
            gauge!("backend_fault_error_rate").set(settings.error_rate);
            gauge!("backend_fault_latency_seconds").set(settings.latency.as_secs_f64());
        });
        server::serve(listener, Routes::default(), &[], Some(endpoint), shutdown).await
    }
}
