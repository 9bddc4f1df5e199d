//! Start and stop: a gateway that is told to stop finishes the calls it
//! has accepted before it returns.

mod support;

use std::time::Duration;

use support::{TestBackend, TestGateway, gateway_config, get_product, meta};

#[tokio::test]
async fn shutdown_lets_the_calls_in_flight_finish() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    backend.set_latency_ms(300).await;

    let mut catalog = gateway.catalog();
    let call = tokio::spawn(async move { catalog.get_product(get_product("sku-1001")).await });
    // Stop only once the call has reached the backend.
    while backend.calls() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.server.stop().await;

    let response = call.await.unwrap().expect("the call in flight is answered");
    assert_eq!(meta(response.metadata(), "x-cache"), Some("miss"));
    assert_eq!(response.into_inner().product.unwrap().id, "sku-1001");
}
