//! The operator's controls over the circuits, over real gRPC on the admin
//! listener, and what callers see of them.

mod support;

use resilient_catalog::proto::{
    catalog::v1::{GET_PRODUCT_PATH, LIST_PRODUCTS_PATH},
    gateway::v1::{
        CircuitState, CircuitTarget, DisableRequest, ForceClosedRequest, ForceOpenRequest,
        MetricsOnlyRequest, ResetRequest, circuit_target::Target,
    },
};
use support::{TestBackend, TestGateway, gateway_config, get_product, meta};
use tonic::Code;

fn one(name: &str) -> Option<CircuitTarget> {
    Some(CircuitTarget {
        target: Some(Target::Name(name.into())),
    })
}

fn all() -> Option<CircuitTarget> {
    Some(CircuitTarget {
        target: Some(Target::All(true)),
    })
}

#[tokio::test]
async fn force_open_rejects_calls_that_would_succeed_until_force_closed() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();
    let fresh = catalog
        .get_product(get_product("sku-1001"))
        .await
        .unwrap()
        .into_inner();
    gateway.flush_cache().await;

    let changed = gateway
        .circuits()
        .force_open(ForceOpenRequest {
            target: one(GET_PRODUCT_PATH),
        })
        .await
        .unwrap()
        .into_inner()
        .circuits;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].state(), CircuitState::ForcedOpen);

    let calls = backend.calls();
    let stale = catalog.get_product(get_product("sku-1001")).await.unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(
        meta(stale.metadata(), "x-circuit-state"),
        Some("forced_open")
    );
    assert_eq!(stale.into_inner(), fresh);
    let status = catalog
        .get_product(get_product("sku-1002"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("forced open by an operator"),
        "{}",
        status.message()
    );
    assert_eq!(backend.calls(), calls, "the backend was not called");
    // The other method is untouched.
    assert_eq!(
        gateway.circuit_state(LIST_PRODUCTS_PATH).await,
        CircuitState::Closed
    );

    gateway
        .circuits()
        .force_closed(ForceClosedRequest {
            target: one(GET_PRODUCT_PATH),
        })
        .await
        .unwrap();
    let response = catalog.get_product(get_product("sku-1002")).await.unwrap();
    assert_eq!(meta(response.metadata(), "x-cache"), Some("miss"));
    assert_eq!(meta(response.metadata(), "x-circuit-state"), Some("closed"));
}

#[tokio::test]
async fn disable_metrics_only_and_reset_apply_to_all_circuits() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut catalog = gateway.catalog();
    let mut admin = gateway.circuits();
    backend.set_error_rate(1.0).await;

    let changed = admin
        .disable(DisableRequest { target: all() })
        .await
        .unwrap()
        .into_inner()
        .circuits;
    assert_eq!(changed.len(), 2);
    assert!(changed.iter().all(|c| c.state() == CircuitState::Disabled));
    for _ in 0..5 {
        let status = catalog
            .get_product(get_product("sku-1003"))
            .await
            .unwrap_err();
        assert_eq!(meta(status.metadata(), "x-circuit-state"), Some("disabled"));
    }
    let counts = gateway.circuit(GET_PRODUCT_PATH).await.counts.unwrap();
    assert_eq!(counts.failures, 0, "a disabled circuit counts nothing");

    admin
        .metrics_only(MetricsOnlyRequest { target: all() })
        .await
        .unwrap();
    for _ in 0..5 {
        catalog
            .get_product(get_product("sku-1003"))
            .await
            .unwrap_err();
    }
    let circuit = gateway.circuit(GET_PRODUCT_PATH).await;
    assert_eq!(circuit.state(), CircuitState::MetricsOnly, "it never opens");
    assert_eq!(circuit.counts.unwrap().failures, 5);

    let reset = admin
        .reset(ResetRequest { target: all() })
        .await
        .unwrap()
        .into_inner()
        .circuits;
    assert!(reset.iter().all(|c| c.state() == CircuitState::Closed));
    assert!(reset.iter().all(|c| c.counts.unwrap().failures == 0));
}

#[tokio::test]
async fn a_control_needs_a_target_that_exists() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    let mut admin = gateway.circuits();

    let status = admin
        .force_open(ForceOpenRequest { target: None })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = admin
        .force_open(ForceOpenRequest {
            target: Some(CircuitTarget {
                target: Some(Target::All(false)),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = admin
        .reset(ResetRequest {
            target: one("/catalog.v1.CatalogService/Nope"),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("Nope"), "{}", status.message());
}
