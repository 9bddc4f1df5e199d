//! What Prometheus and a container runtime see: the real binaries serve
//! `/metrics` on their admin listeners, with what an operator watches (the
//! circuit opening, answers turning stale, backend latency, calls by code),
//! and answer their own `healthcheck` subcommand.

mod support;

use std::net::SocketAddr;

use resilient_catalog::proto::{
    backend::v1::{SetFaultsRequest, chaos_service_client::ChaosServiceClient},
    catalog::v1::catalog_service_client::CatalogServiceClient,
    gateway::v1::{
        CircuitState, ListCircuitsRequest, circuit_admin_service_client::CircuitAdminServiceClient,
    },
};
use support::{
    channel, free_port, get_product, meta,
    process::{Process, binary, scrape},
};

const GET_PRODUCT: &str = "catalog.v1.CatalogService/GetProduct";

fn address() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// The series of a call histogram's count.
fn calls(histogram: &str, method: &str, code: &str) -> String {
    format!(
        r#"{histogram}_count{{rpc_system_name="grpc",rpc_method="{method}",rpc_response_status_code="{code}"}}"#
    )
}

fn circuit(metric: &str, labels: &str) -> String {
    format!(r#"{metric}{{circuit="/{GET_PRODUCT}",{labels}}}"#)
}

struct Stack {
    backend: Process,
    gateway: Process,
    backend_public: SocketAddr,
    backend_admin: SocketAddr,
    gateway_public: SocketAddr,
    gateway_admin: SocketAddr,
}

async fn start_stack() -> Stack {
    let (backend_public, backend_admin) = (address(), address());
    let mut backend = Process::spawn(
        "backend",
        &[
            "--listen",
            &backend_public.to_string(),
            "--admin-listen",
            &backend_admin.to_string(),
        ],
        &[],
    );
    backend.wait_healthy(backend_public).await;
    backend.wait_healthy(backend_admin).await;

    let (gateway_public, gateway_admin) = (address(), address());
    let mut gateway = Process::spawn(
        "gateway",
        &[
            "--listen",
            &gateway_public.to_string(),
            "--admin-listen",
            &gateway_admin.to_string(),
            "--backend-url",
            &format!("http://{backend_public}"),
            "--volume-threshold",
            "2",
        ],
        &[],
    );
    gateway.wait_healthy(gateway_public).await;
    Stack {
        backend,
        gateway,
        backend_public,
        backend_admin,
        gateway_public,
        gateway_admin,
    }
}

#[tokio::test]
async fn the_admin_listeners_show_the_circuit_opening_and_the_answers_turning_stale() {
    let stack = start_stack().await;
    let mut catalog = CatalogServiceClient::new(channel(stack.gateway_public));

    let before = scrape(stack.gateway_admin).await;
    assert_eq!(
        before.get(&circuit("circuit_breaker_state", r#"state="closed""#)),
        1.0
    );
    assert_eq!(
        before.get(&circuit("circuit_breaker_state", r#"state="open""#)),
        0.0
    );

    // One good answer, then the backend fails: the second call fails
    // (1 failure in 2 calls opens the circuit) and the next two are
    // rejected by the open circuit; all three are answered stale.
    catalog.get_product(get_product("sku-1001")).await.unwrap();
    ChaosServiceClient::new(channel(stack.backend_public))
        .set_faults(SetFaultsRequest {
            error_rate: 1.0,
            ..SetFaultsRequest::default()
        })
        .await
        .unwrap();
    for _ in 0..3 {
        let answer = catalog.get_product(get_product("sku-1001")).await.unwrap();
        assert_eq!(meta(answer.metadata(), "x-cache"), Some("stale"));
    }

    let gateway = scrape(stack.gateway_admin).await;
    assert_eq!(
        gateway.get(&circuit("circuit_breaker_state", r#"state="open""#)),
        1.0
    );
    assert_eq!(
        gateway.get(&circuit("circuit_breaker_state", r#"state="closed""#)),
        0.0
    );
    let outcome = |outcome: &str| {
        gateway.get(&circuit(
            "circuit_breaker_calls_total",
            &format!(r#"outcome="{outcome}""#),
        ))
    };
    assert_eq!(
        [outcome("success"), outcome("failure"), outcome("rejected")],
        [1.0, 1.0, 2.0]
    );
    assert_eq!(gateway.get(r#"gateway_answers_total{cache="miss"}"#), 1.0);
    assert_eq!(gateway.get(r#"gateway_answers_total{cache="stale"}"#), 3.0);
    assert_eq!(gateway.get(r#"gateway_answers_total{cache="hit"}"#), 0.0);
    // Callers got four answers; the backend was called twice.
    let server = "rpc_server_call_duration_seconds";
    let client = "rpc_client_call_duration_seconds";
    assert_eq!(gateway.get(&calls(server, GET_PRODUCT, "OK")), 4.0);
    assert_eq!(gateway.get(&calls(client, GET_PRODUCT, "OK")), 1.0);
    assert_eq!(gateway.get(&calls(client, GET_PRODUCT, "UNAVAILABLE")), 1.0);
    assert!(
        gateway
            .text
            .contains("# TYPE rpc_client_call_duration_seconds histogram"),
        "{}",
        gateway.text
    );

    let backend = scrape(stack.backend_admin).await;
    assert_eq!(backend.get("backend_fault_error_rate"), 1.0);
    assert_eq!(backend.get(&calls(server, GET_PRODUCT, "OK")), 1.0);
    assert_eq!(backend.get(&calls(server, GET_PRODUCT, "UNAVAILABLE")), 1.0);
    assert_eq!(
        backend.get(&calls(server, "backend.v1.ChaosService/SetFaults", "OK")),
        1.0
    );

    // HTTP/1.1 for Prometheus does not stop the admin listener speaking
    // gRPC.
    let circuits = CircuitAdminServiceClient::new(channel(stack.gateway_admin))
        .list_circuits(ListCircuitsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .circuits;
    let get_product = circuits
        .iter()
        .find(|c| c.name == format!("/{GET_PRODUCT}"))
        .expect("the GetProduct circuit");
    assert_eq!(get_product.state(), CircuitState::Open);

    drop(stack.gateway);
    drop(stack.backend);
}

#[tokio::test]
async fn made_up_methods_share_one_series_and_the_public_listener_has_no_metrics() {
    let stack = start_stack().await;
    // A client that sends made-up paths must not grow the series, and
    // learns from each answer what it called and what is served: the
    // admin service and a method the contract does not have (a client of
    // a newer contract, say) are unknown here too.
    let paths = [
        "/no.such.Service/One",
        "/no.such.Service/Two",
        "/x",
        "/gateway.v1.CircuitAdminService/ListCircuits",
        "/catalog.v1.CatalogService/DeleteProduct",
    ];
    for path in paths {
        let mut grpc = tonic::client::Grpc::new(channel(stack.gateway_public));
        grpc.ready().await.unwrap();
        let error = grpc
            .unary::<(), (), _>(
                tonic::Request::new(()),
                path.parse().unwrap(),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unimplemented, "{path}");
        assert_eq!(
            error.message(),
            format!(
                "this listener has no method {path}; it serves catalog.v1.CatalogService, \
                 grpc.health.v1.Health, grpc.reflection.v1.ServerReflection, \
                 grpc.reflection.v1alpha.ServerReflection"
            ),
        );
    }
    let gateway = scrape(stack.gateway_admin).await;
    assert_eq!(
        gateway.get(&calls(
            "rpc_server_call_duration_seconds",
            "_OTHER",
            "UNIMPLEMENTED"
        )),
        paths.len() as f64
    );
    assert!(
        !gateway.text.contains("no.such.Service"),
        "{}",
        gateway.text
    );

    // The public listener speaks gRPC only: a scrape there gets no
    // metrics.
    let public = http_get(stack.gateway_public, "/metrics").await;
    assert!(!public.starts_with("HTTP/1.1 200"), "{public}");
    assert!(!public.contains("circuit_breaker"), "{public}");
    drop(stack);
}

/// What `GET path` over HTTP/1.1 at `addr` gets, up to the connection's
/// end, as text.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("the listener closes the connection");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn the_healthcheck_subcommand_finds_the_listener_from_the_same_settings() {
    let stack = start_stack().await;
    let healthcheck = |name: &str, variable: &str, listen: SocketAddr| {
        std::process::Command::new(binary(name))
            .arg("healthcheck")
            .env(variable, listen.to_string())
            .output()
            .expect("the binary runs")
    };

    for (name, variable, listen) in [
        ("gateway", "GATEWAY_LISTEN", stack.gateway_public),
        ("backend", "BACKEND_LISTEN", stack.backend_public),
    ] {
        let healthy = healthcheck(name, variable, listen);
        assert!(
            healthy.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&healthy.stderr)
        );

        // Nothing listens there: exit code 1, and the address in the
        // message.
        let nothing = address();
        let down = healthcheck(name, variable, nothing);
        assert_eq!(down.status.code(), Some(1), "{name}");
        let message = String::from_utf8_lossy(&down.stderr);
        assert!(
            message.contains(&nothing.to_string()) && message.contains("cannot connect"),
            "{name}: {message}"
        );
    }
    drop(stack);
}
