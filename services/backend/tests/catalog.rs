//! The backend driven over real gRPC sockets, as the gateway and grpcurl
//! see it.

use std::{net::SocketAddr, time::Duration};

use backend::{Backend, Catalog, FaultSettings};
use resilient_catalog::proto::{
    backend::v1::{
        FaultCode, Faults as FaultsMessage, GetFaultsRequest, SetFaultsRequest,
        chaos_service_client::ChaosServiceClient,
    },
    catalog::v1::{
        GetProductRequest, ListProductsRequest, Money, catalog_service_client::CatalogServiceClient,
    },
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle, time::Instant};
use tonic::{Code, transport::Channel};

/// A backend serving on a port of its own until [`Running::stop`].
struct Running {
    /// A clone of the backend that serves, to read its faults and calls.
    backend: Backend,
    /// Where it listens.
    address: SocketAddr,
    /// Starts the graceful shutdown.
    stop: oneshot::Sender<()>,
    /// The task of `Backend::serve`, which ends once shutdown is done.
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    /// Serves the bundled catalog, without faults, on `127.0.0.1:0`.
    async fn start() -> Self {
        let backend = Backend::new(Catalog::bundled(), FaultSettings::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(backend.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            backend,
            address,
            stop,
            server,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel().await)
    }

    async fn chaos(&self) -> ChaosServiceClient<Channel> {
        ChaosServiceClient::new(self.channel().await)
    }

    /// Shuts down and waits until `serve` returns.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
    }
}

fn get(id: &str) -> GetProductRequest {
    GetProductRequest { id: id.into() }
}

fn list(page_size: i32, page_token: &str) -> ListProductsRequest {
    ListProductsRequest {
        page_size,
        page_token: page_token.into(),
    }
}

fn faults(error_rate: f64, latency_ms: u32, code: FaultCode) -> SetFaultsRequest {
    SetFaultsRequest {
        error_rate,
        latency_ms,
        code: code as i32,
    }
}

#[tokio::test]
async fn get_product_returns_the_product() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;

    let product = catalog
        .get_product(get("sku-1001"))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(product.id, "sku-1001");
    assert_eq!(product.title, "Aria Wireless Headphones");
    assert_eq!(product.category, "audio");
    assert_eq!(
        product.price,
        Some(Money {
            currency_code: "USD".into(),
            units: 129,
            nanos: 990_000_000,
        })
    );
    assert_eq!(
        product.update_time,
        Some("2026-03-14T09:30:00Z".parse().unwrap())
    );
    running.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let running = Running::start().await;
    let status = running
        .catalog()
        .await
        .get_product(get("sku-9999"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("sku-9999"),
        "{}",
        status.message()
    );
    running.stop().await;
}

#[tokio::test]
async fn empty_and_overlong_ids_are_invalid() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;
    for id in [String::new(), "x".repeat(129)] {
        let status = catalog.get_product(get(&id)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}");
    }
    running.stop().await;
}

#[tokio::test]
async fn paging_visits_every_product_once_in_order() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;

    let mut ids = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = catalog.list_products(list(7, &token)).await.unwrap();
        let page = page.into_inner();
        pages += 1;
        assert!(!page.products.is_empty(), "page {pages} is empty");
        ids.extend(page.products.into_iter().map(|product| product.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages < 36, "paging does not end");
    }
    let expected: Vec<_> = (1001..=1036).map(|n| format!("sku-{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(pages, 6);
    running.stop().await;
}

#[tokio::test]
async fn a_page_that_ends_the_catalog_has_no_next_token() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;

    let first = catalog
        .list_products(list(18, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.products.len(), 18);
    let last = catalog
        .list_products(list(18, &first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.products.len(), 18);
    assert_eq!(last.products.last().unwrap().id, "sku-1036");
    assert_eq!(last.next_page_token, "");

    // 0 means the default page size, 20.
    let default = catalog
        .list_products(list(0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(default.products.len(), 20);
    running.stop().await;
}

#[tokio::test]
async fn negative_page_sizes_and_forged_tokens_are_invalid() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;

    let status = catalog.list_products(list(-1, "")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    for forged in ["sku-1007", "djI6c2t1LTEwMDc", "!!"] {
        let status = catalog.list_products(list(7, forged)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{forged:?}");
        assert_eq!(
            status.message(),
            "page_token is not one this service issued"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn injected_failures_carry_the_code_and_can_be_cleared() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;
    let mut chaos = running.chaos().await;

    let set = chaos
        .set_faults(faults(1.0, 0, FaultCode::Internal))
        .await
        .unwrap()
        .into_inner();
    let expected = FaultsMessage {
        error_rate: 1.0,
        latency_ms: 0,
        code: FaultCode::Internal as i32,
    };
    assert_eq!(set.faults, Some(expected));
    let read = chaos.get_faults(GetFaultsRequest {}).await.unwrap();
    assert_eq!(read.into_inner().faults, Some(expected));
    assert_eq!(running.backend.faults().get().code, Code::Internal);

    let status = catalog.get_product(get("sku-1001")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(status.message().starts_with("injected fault"));
    let status = catalog.list_products(list(5, "")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);

    // An empty request clears every fault.
    let cleared = chaos
        .set_faults(SetFaultsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        cleared.faults,
        Some(FaultsMessage {
            error_rate: 0.0,
            latency_ms: 0,
            code: FaultCode::Unavailable as i32,
        })
    );
    assert!(catalog.get_product(get("sku-1001")).await.is_ok());
    running.stop().await;
}

#[tokio::test]
async fn faults_do_not_touch_health_or_chaos() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let running = Running::start().await;
    running
        .backend
        .faults()
        .set(FaultSettings {
            error_rate: 1.0,
            ..FaultSettings::default()
        })
        .unwrap();

    let mut health = HealthClient::new(running.channel().await);
    for service in ["", "catalog.v1.CatalogService", "backend.v1.ChaosService"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        assert_eq!(
            answer.into_inner().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    assert!(
        running
            .chaos()
            .await
            .get_faults(GetFaultsRequest {})
            .await
            .is_ok()
    );
    assert_eq!(running.backend.catalog_calls(), 0);
    running.stop().await;
}

#[tokio::test]
async fn invalid_faults_are_refused_naming_the_field() {
    let running = Running::start().await;
    let mut chaos = running.chaos().await;

    let status = chaos
        .set_faults(faults(2.0, 0, FaultCode::Internal))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("error_rate"),
        "{}",
        status.message()
    );

    let status = chaos
        .set_faults(faults(0.0, 600_001, FaultCode::Internal))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("latency_ms"),
        "{}",
        status.message()
    );

    assert_eq!(running.backend.faults().get(), FaultSettings::default());
    running.stop().await;
}

#[tokio::test]
async fn latency_delays_catalog_calls() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;
    running
        .chaos()
        .await
        .set_faults(faults(0.0, 200, FaultCode::Unspecified))
        .await
        .unwrap();

    let start = Instant::now();
    catalog.get_product(get("sku-1001")).await.unwrap();
    // Only a lower bound: a loaded machine may take longer.
    assert!(start.elapsed() >= Duration::from_millis(200));
    running.stop().await;
}

#[tokio::test]
async fn every_catalog_call_is_counted() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;
    let calls = running.backend.calls();

    catalog.get_product(get("sku-1001")).await.unwrap();
    catalog.get_product(get("sku-9999")).await.unwrap_err();
    catalog.get_product(get("")).await.unwrap_err();
    catalog.list_products(list(5, "")).await.unwrap();
    catalog.list_products(list(-5, "")).await.unwrap_err();
    running
        .backend
        .faults()
        .set(FaultSettings {
            error_rate: 1.0,
            ..FaultSettings::default()
        })
        .unwrap();
    catalog.get_product(get("sku-1001")).await.unwrap_err();

    assert_eq!(calls.get(), 6);
    assert_eq!(running.backend.catalog_calls(), 6);
    running.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_call_in_flight_finish() {
    let running = Running::start().await;
    let mut catalog = running.catalog().await;
    running
        .backend
        .faults()
        .set(FaultSettings {
            latency: Duration::from_millis(300),
            ..FaultSettings::default()
        })
        .unwrap();

    let call = tokio::spawn(async move { catalog.get_product(get("sku-1001")).await });
    // Shut down only once the call has reached the backend.
    while running.backend.catalog_calls() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await;

    let product = call.await.unwrap().unwrap().into_inner().product.unwrap();
    assert_eq!(product.id, "sku-1001");
}

#[tokio::test]
async fn reflection_lists_every_service() {
    use tokio_stream::StreamExt as _;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let running = Running::start().await;
    let mut reflection = ServerReflectionClient::new(running.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "backend.v1.ChaosService",
            "catalog.v1.CatalogService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ]
    );
    drop(answers);
    running.stop().await;
}
