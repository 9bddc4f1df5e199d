//! What the gateway's integration tests share: a real `redis-server` of
//! their own, the backend and the gateway on real sockets (in process or as
//! the real binaries), and gRPC clients.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part of it

pub mod process;
pub mod redis;

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    time::Duration,
};

use backend::{Backend, Catalog, FaultSettings};
use gateway::{Config, Gateway};
use resilient_catalog::proto::{
    backend::v1::{SetFaultsRequest, chaos_service_client::ChaosServiceClient},
    catalog::v1::{GetProductRequest, catalog_service_client::CatalogServiceClient},
    gateway::v1::{
        Circuit, CircuitState, ListCircuitsRequest,
        circuit_admin_service_client::CircuitAdminServiceClient,
    },
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Request,
    transport::{Channel, Endpoint},
};

/// A port that was free a moment ago, for a server that must be told its
/// port before it starts (a `redis-server`, or a gateway's backend URL).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A server task and the switch that stops it gracefully.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the server gracefully and waits until it has stopped.
    pub async fn stop(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task ended cleanly");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A backend in this process.
pub struct TestBackend {
    pub server: Running,
    pub backend: Backend,
}

impl TestBackend {
    /// Serves the bundled catalog on a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener).await
    }

    /// Serves the bundled catalog on `listener`.
    pub async fn start_on(listener: TcpListener) -> Self {
        let backend = Backend::new(Catalog::bundled(), FaultSettings::default());
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let backend = backend.clone();
            async move {
                backend
                    .serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("the backend serves");
            }
        });
        Self {
            server: Running {
                addr,
                stop: Some(stop),
                task: Some(task),
            },
            backend,
        }
    }

    pub fn url(&self) -> http::Uri {
        format!("http://{}", self.server.addr).parse().unwrap()
    }

    /// The catalog calls the backend has received so far.
    pub fn calls(&self) -> u64 {
        self.backend.catalog_calls()
    }

    /// Makes every catalog call fail with UNAVAILABLE (rate 1), or clears
    /// the faults (rate 0), through the real ChaosService.
    pub async fn set_error_rate(&self, error_rate: f64) {
        self.set_faults(SetFaultsRequest {
            error_rate,
            ..SetFaultsRequest::default()
        })
        .await;
    }

    pub async fn set_latency_ms(&self, latency_ms: u32) {
        self.set_faults(SetFaultsRequest {
            latency_ms,
            ..SetFaultsRequest::default()
        })
        .await;
    }

    pub async fn set_faults(&self, faults: SetFaultsRequest) {
        ChaosServiceClient::new(channel(self.server.addr))
            .set_faults(faults)
            .await
            .expect("SetFaults");
    }
}

/// A gateway in this process.
pub struct TestGateway {
    pub server: Running,
    pub admin: SocketAddr,
    pub gateway_cache: resilient_catalog::cache::LastKnownGood,
}

impl TestGateway {
    /// Starts a gateway with `config` on free ports.
    pub async fn start(config: Config) -> Self {
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let gateway = Gateway::new(&config).expect("a valid gateway config");
        let gateway_cache = gateway.cache().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway
                .serve(public, admin, async {
                    let _ = stopped.await;
                })
                .await
                .expect("the gateway serves");
        });
        Self {
            server: Running {
                addr,
                stop: Some(stop),
                task: Some(task),
            },
            admin: admin_addr,
            gateway_cache,
        }
    }

    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(channel(self.server.addr))
    }

    pub fn circuits(&self) -> CircuitAdminServiceClient<Channel> {
        CircuitAdminServiceClient::new(channel(self.admin))
    }

    /// `method`'s circuit, as ListCircuits reports it.
    pub async fn circuit(&self, method: &str) -> Circuit {
        let circuits = self
            .circuits()
            .list_circuits(ListCircuitsRequest {})
            .await
            .expect("ListCircuits")
            .into_inner()
            .circuits;
        circuits
            .iter()
            .find(|circuit| circuit.name == method)
            .cloned()
            .unwrap_or_else(|| panic!("no circuit {method} in {circuits:?}"))
    }

    /// The state of `method`'s circuit.
    pub async fn circuit_state(&self, method: &str) -> CircuitState {
        self.circuit(method).await.state()
    }

    /// The failures in `method`'s circuit window.
    pub async fn circuit_failures(&self, method: &str) -> u64 {
        self.circuit(method)
            .await
            .counts
            .unwrap_or_default()
            .failures
    }

    /// Waits until the cache writes made so far have landed.
    pub async fn flush_cache(&self) {
        self.gateway_cache.flush().await;
    }
}

/// A `redis-server`, a backend, and a gateway using both.
pub async fn start_with_redis() -> (redis::RedisServer, TestBackend, TestGateway) {
    let redis = redis::RedisServer::start().await;
    let backend = TestBackend::start().await;
    let mut config = gateway_config(backend.url());
    config.redis_url = Some(redis.url());
    let gateway = TestGateway::start(config).await;
    (redis, backend, gateway)
}

/// A gateway configuration for tests: short timings, the given backend.
pub fn gateway_config(backend: http::Uri) -> Config {
    let mut config = Config::with_backend(backend);
    config.timeout_ms = 1_000;
    config.volume_threshold = 3;
    config.reset_timeout_ms = 1_000;
    config.redis_timeout_ms = 250;
    config
}

/// A lazily connected channel to `addr`.
pub fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// A `GetProduct` request with a deadline, so that a test never hangs.
pub fn get_product(id: &str) -> Request<GetProductRequest> {
    let mut request = Request::new(GetProductRequest { id: id.into() });
    request.set_timeout(Duration::from_secs(10));
    request
}

/// The value of a metadata entry, as text.
pub fn meta<'a>(metadata: &'a tonic::metadata::MetadataMap, key: &str) -> Option<&'a str> {
    metadata
        .get(key)
        .map(|value| value.to_str().expect("ASCII metadata"))
}

/// Retries `check` every 50ms until it returns `Some`, for up to 20s; for
/// what happens in the background (a reconnect, a timer).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
