//! The `gateway` binary: parses the flags, starts telemetry, serves until
//! SIGTERM or SIGINT, then flushes the spans.

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use gateway::{Config, Gateway};
use resilient_catalog::{health_check, shutdown, telemetry};
use tokio::net::TcpListener;

/// jemalloc, not glibc's malloc, as linkerd2-proxy does. Under load with
/// Redis, the gateway's allocations move between threads (a request's
/// task, the background Redis write, the cache's housekeeping), and glibc
/// kept both of its arenas resident: 174 MiB after 20 000 distinct answers,
/// with 16 MiB of them live (heaptrack). jemalloc holds 35 MiB there, and
/// less at start (13 MiB) and without Redis (33 MiB against 34); mimalloc
/// came out at 46 MiB, 25 at start (bench/proxy_overhead.py measures the
/// memory; BENCHMARKS.md). Its build needs `make` (see the Dockerfile).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The catalog gateway: serves `catalog.v1.CatalogService` in front of the
/// backend, through a circuit breaker per method, and answers from the
/// last-known-good cache when the backend fails, times out or its circuit
/// is open.
#[derive(Parser)]
#[command(name = "gateway", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Checks that the gateway on --listen (GATEWAY_LISTEN) answers SERVING
    /// on grpc.health.v1; exits 0 if it does, 1 if not. For container
    /// health checks: the image needs no other probe.
    Healthcheck {
        /// How long to wait for the answer, in milliseconds.
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        timeout_ms: u64,
    },
}

/// Why the gateway stopped, and the exit code that says so.
enum Failure {
    /// A setting that cannot work: exit code 2, as clap's own refusals.
    Config(String),
    /// A failure while starting or serving: exit code 1.
    Run(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { command, config } = Cli::parse();
    if let Some(Command::Healthcheck { timeout_ms }) = command {
        let timeout = Duration::from_millis(timeout_ms);
        return health_check::exit_code("gateway", config.listen, timeout).await;
    }
    let telemetry = match telemetry::init(&telemetry::TelemetryConfig::from_env("gateway")) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("gateway: {error}");
            return ExitCode::from(2);
        }
    };
    let result = run(config).await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(error)) => {
            eprintln!("gateway: {error}");
            ExitCode::from(2)
        }
        Err(Failure::Run(error)) => {
            eprintln!("gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Failure> {
    let metrics =
        telemetry::metrics::install().map_err(|error| Failure::Run(format!("metrics: {error}")))?;
    let gateway = Gateway::new(&config)
        .map_err(|error| Failure::Config(error.to_string()))?
        .with_metrics(metrics);
    let bind = |flag: &'static str, address| async move {
        TcpListener::bind(address)
            .await
            .map_err(|error| Failure::Run(format!("{flag} {address}: {error}")))
    };
    let public = bind("--listen", config.listen).await?;
    let admin = bind("--admin-listen", config.admin_listen).await?;
    let local = |listener: &TcpListener| {
        listener
            .local_addr()
            .map_err(|error| Failure::Run(error.to_string()))
    };
    tracing::info!(
        listen = %local(&public)?,
        admin_listen = %local(&admin)?,
        backend_url = %config.backend_url,
        cache = gateway.cache().store_name(),
        "gateway listening"
    );
    gateway
        .serve(public, admin, shutdown::signal())
        .await
        .map_err(|error| Failure::Run(format!("server error: {error}")))?;
    tracing::info!("gateway stopped");
    Ok(())
}
