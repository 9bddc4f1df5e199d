//! The gateway end to end over real sockets: a real backend, a real
//! `redis-server`, and the gateway between them.

mod support;

use std::time::Duration;

use resilient_catalog::proto::{
    backend::v1::{FaultCode, SetFaultsRequest},
    catalog::v1::{GET_PRODUCT_PATH, ListProductsRequest},
    gateway::v1::CircuitState,
};
use support::{
    TestBackend, TestGateway, eventually, gateway_config, get_product, meta, redis::RedisServer,
};
use tonic::Code;
use tonic_types::StatusExt as _;

#[tokio::test]
async fn a_healthy_backend_answers_with_x_cache_miss() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;

    let response = gateway
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap();
    assert_eq!(meta(response.metadata(), "x-cache"), Some("miss"));
    assert_eq!(meta(response.metadata(), "x-circuit-state"), Some("closed"));
    assert_eq!(meta(response.metadata(), "x-cache-age"), None);
    let product = response.into_inner().product.expect("a product");
    assert_eq!(product.id, "sku-1001");
    assert!(product.price.is_some());
    assert_eq!(backend.calls(), 1);
}

#[tokio::test]
async fn stale_answers_come_from_redis_while_the_circuit_is_open_and_the_backend_sees_no_calls() {
    let redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let mut config = gateway_config(backend.url());
    config.redis_url = Some(redis.url());
    config.reset_timeout_ms = 60_000; // stays open for the whole test
    let gateway = TestGateway::start(config).await;
    let mut catalog = gateway.catalog();

    // A success is the last known good answer.
    let fresh = catalog
        .get_product(get_product("sku-1002"))
        .await
        .unwrap()
        .into_inner();
    gateway.flush_cache().await;
    assert_eq!(redis.key_count(), 1, "the answer was written to Redis");

    backend.set_error_rate(1.0).await;
    // While the circuit is still closed, failures are answered from Redis.
    for _ in 0..3 {
        let stale = catalog.get_product(get_product("sku-1002")).await.unwrap();
        assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
        assert!(meta(stale.metadata(), "x-cache-age").is_some());
        assert_eq!(stale.into_inner(), fresh);
    }
    // The second failure made 2 in 3 calls: at least 50% with the volume
    // threshold (3) reached, so the circuit is open.
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Open
    );

    let calls_before = backend.calls();
    for _ in 0..10 {
        let stale = catalog.get_product(get_product("sku-1002")).await.unwrap();
        assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
        assert_eq!(meta(stale.metadata(), "x-circuit-state"), Some("open"));
        assert_eq!(stale.into_inner(), fresh);
    }
    assert_eq!(
        backend.calls(),
        calls_before,
        "no call reached the backend while open"
    );

    // An id that was never answered has no fallback: UNAVAILABLE, saying
    // why, with the delay until the next trial.
    let status = catalog
        .get_product(get_product("sku-1003"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("is open"), "{}", status.message());
    let retry = status.get_details_retry_info().expect("a RetryInfo detail");
    let delay = retry.retry_delay.expect("a retry delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(60),
        "{delay:?}"
    );
    assert_eq!(meta(status.metadata(), "x-circuit-state"), Some("open"));
    assert_eq!(backend.calls(), calls_before);
}

#[tokio::test]
async fn the_circuit_closes_after_the_reset_timeout_once_the_backend_is_back() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();
    catalog.get_product(get_product("sku-1004")).await.unwrap();

    backend.set_error_rate(1.0).await;
    for _ in 0..3 {
        let stale = catalog.get_product(get_product("sku-1004")).await.unwrap();
        assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    }
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Open
    );

    backend.set_error_rate(0.0).await;
    // After the reset timeout (1s here) the circuit lets one trial through,
    // which succeeds and closes it.
    eventually("the circuit to admit a trial", || async {
        (gateway.circuit_state(GET_PRODUCT_PATH).await == CircuitState::HalfOpen).then_some(())
    })
    .await;
    let calls_before = backend.calls();
    let response = catalog.get_product(get_product("sku-1004")).await.unwrap();
    assert_eq!(meta(response.metadata(), "x-cache"), Some("miss"));
    assert_eq!(meta(response.metadata(), "x-circuit-state"), Some("closed"));
    assert_eq!(backend.calls(), calls_before + 1);
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Closed
    );
}

#[tokio::test]
async fn a_failed_trial_opens_the_circuit_again() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();
    backend.set_error_rate(1.0).await;
    for _ in 0..3 {
        let status = catalog
            .get_product(get_product("sku-1005"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("backend failed with UNAVAILABLE"),
            "{}",
            status.message()
        );
    }
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Open
    );

    eventually("the circuit to admit a trial", || async {
        (gateway.circuit_state(GET_PRODUCT_PATH).await == CircuitState::HalfOpen).then_some(())
    })
    .await;
    let calls_before = backend.calls();
    let status = catalog
        .get_product(get_product("sku-1005"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(backend.calls(), calls_before + 1, "exactly one trial call");
    assert_eq!(meta(status.metadata(), "x-circuit-state"), Some("open"));
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Open
    );
}

#[tokio::test]
async fn the_callers_own_errors_pass_through_and_never_open_the_circuit() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();

    for _ in 0..10 {
        let status = catalog
            .get_product(get_product("sku-0000"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert!(
            status.message().contains("sku-0000"),
            "{}",
            status.message()
        );
        assert_eq!(meta(status.metadata(), "x-cache"), Some("miss"));
        assert_eq!(meta(status.metadata(), "x-circuit-state"), Some("closed"));
    }
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Closed
    );

    // The backend injecting NOT_FOUND is a caller error too: passed on, not
    // a reason for a stale answer.
    catalog.get_product(get_product("sku-1006")).await.unwrap();
    backend
        .set_faults(SetFaultsRequest {
            error_rate: 1.0,
            code: FaultCode::NotFound.into(),
            ..SetFaultsRequest::default()
        })
        .await;
    let status = catalog
        .get_product(get_product("sku-1006"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(meta(status.metadata(), "x-cache"), Some("miss"));
}

#[tokio::test]
async fn bad_input_is_refused_even_while_the_backend_is_down() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    backend.server.stop().await;
    let mut catalog = gateway.catalog();

    let status = catalog.get_product(get_product("")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "id must not be empty");

    let status = catalog
        .get_product(get_product(&"x".repeat(200)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = catalog
        .list_products(ListProductsRequest {
            page_size: -1,
            ..ListProductsRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Closed
    );
}

#[tokio::test]
async fn a_backend_that_is_down_gives_stale_answers_then_unavailable() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();
    let fresh = catalog
        .get_product(get_product("sku-1007"))
        .await
        .unwrap()
        .into_inner();
    gateway.flush_cache().await;

    backend.server.stop().await;
    let stale = catalog.get_product(get_product("sku-1007")).await.unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(stale.into_inner(), fresh);

    let status = catalog
        .get_product(get_product("sku-1008"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn a_slow_backend_times_out_into_a_stale_answer() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();
    let fresh = catalog
        .get_product(get_product("sku-1009"))
        .await
        .unwrap()
        .into_inner();
    gateway.flush_cache().await;

    // Slower than the gateway's 1s budget.
    backend.set_latency_ms(5_000).await;
    let stale = catalog.get_product(get_product("sku-1009")).await.unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(stale.into_inner(), fresh);

    let status = catalog
        .get_product(get_product("sku-1010"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("timed out"),
        "{}",
        status.message()
    );

    let counts = gateway.circuit(GET_PRODUCT_PATH).await.counts.unwrap();
    assert_eq!(
        (counts.timeouts, counts.failures),
        (2, 0),
        "both timeouts are counted, as timeouts"
    );
}

#[tokio::test]
async fn a_caller_that_gives_up_early_does_not_count_against_the_backend() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    backend.set_latency_ms(500).await;
    let mut catalog = gateway.catalog();
    for _ in 0..5 {
        let mut request = get_product("sku-1011");
        request.set_timeout(Duration::from_millis(100));
        let status = catalog.get_product(request).await.unwrap_err();
        // tonic's server reports an expired caller deadline as CANCELLED;
        // the gateway's own check reports DEADLINE_EXCEEDED.
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{status:?}"
        );
    }
    assert_eq!(
        gateway.circuit_state(GET_PRODUCT_PATH).await,
        CircuitState::Closed
    );
    assert_eq!(gateway.circuit_failures(GET_PRODUCT_PATH).await, 0);
}

#[tokio::test]
async fn a_caller_whose_deadline_comes_first_gets_the_stale_answer_from_redis_in_time() {
    // Two replicas share Redis: the one the caller asks never saw the
    // answer, so its stale answer comes from Redis, within the reserve.
    let redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let mut config = gateway_config(backend.url());
    config.redis_url = Some(redis.url());
    config.fallback_reserve_ms = 200; // room for a loaded test machine
    let first = TestGateway::start(config.clone()).await;
    let second = TestGateway::start(config).await;
    let fresh = first
        .catalog()
        .get_product(get_product("sku-1012"))
        .await
        .unwrap()
        .into_inner();
    first.flush_cache().await;

    // Slower than both the caller's deadline and the gateway's 1s budget.
    backend.set_latency_ms(5_000).await;
    let mut catalog = second.catalog();
    let mut request = get_product("sku-1012");
    request.set_timeout(Duration::from_millis(800));
    let stale = catalog.get_product(request).await.unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(meta(stale.metadata(), "x-circuit-state"), Some("closed"));
    assert_eq!(stale.into_inner(), fresh);

    // Nothing cached: the caller waits to its deadline, as it would have.
    let mut request = get_product("sku-1013");
    request.set_timeout(Duration::from_millis(800));
    let status = catalog.get_product(request).await.unwrap_err();
    // The gateway answers DEADLINE_EXCEEDED a moment before the deadline;
    // tonic's client, whose own timer may fire first, says CANCELLED.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );

    let counts = second.circuit(GET_PRODUCT_PATH).await.counts.unwrap();
    assert_eq!(
        (counts.failures, counts.timeouts),
        (0, 0),
        "calls their callers left count nothing against the backend"
    );
}

#[tokio::test]
async fn list_products_pages_through_the_gateway_and_falls_back_per_page() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();

    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = catalog
            .list_products(ListProductsRequest {
                page_size: 10,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        token = page.next_page_token.clone();
        pages.push(page);
        if token.is_empty() {
            break;
        }
    }
    let ids: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.products)
        .map(|p| p.id.clone())
        .collect();
    assert!(
        ids.len() >= 30,
        "the bundled catalog has a few dozen products"
    );
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ordered by id, no repeats"
    );
    gateway.flush_cache().await;

    backend.set_error_rate(1.0).await;
    let second = catalog
        .list_products(ListProductsRequest {
            page_size: 10,
            page_token: pages[0].next_page_token.clone(),
        })
        .await
        .unwrap();
    assert_eq!(meta(second.metadata(), "x-cache"), Some("stale"));
    assert_eq!(second.into_inner(), pages[1]);
}
