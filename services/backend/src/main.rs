//! The `backend` binary: reads its flags, loads the catalog and serves it
//! until SIGTERM or SIGINT.

use std::{error::Error, process::ExitCode, time::Duration};

use backend::{Backend, Catalog, Config};
use clap::{Parser, Subcommand};
use resilient_catalog::{
    health_check, shutdown,
    telemetry::{self, TelemetryConfig},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The same allocator as the gateway's, for the reasons given there.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Serves the product catalog (catalog.v1) over gRPC, and lets an operator
/// make it slow or failing on purpose (backend.v1.ChaosService) to show how
/// the gateway in front of it copes.
#[derive(Parser)]
#[command(name = "backend", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Checks that the backend on --listen (BACKEND_LISTEN) answers SERVING
    /// on grpc.health.v1; exits 0 if it does, 1 if not. For container
    /// health checks: the image needs no other probe.
    Healthcheck {
        /// How long to wait for the answer, in milliseconds.
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        timeout_ms: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints a message naming the flag, and exits, on a bad value.
    let Cli { command, config } = Cli::parse();
    if let Some(Command::Healthcheck { timeout_ms }) = command {
        let timeout = Duration::from_millis(timeout_ms);
        return health_check::exit_code("backend", config.listen, timeout).await;
    }
    let telemetry = match telemetry::init(&TelemetryConfig::from_env("backend")) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("backend: cannot start telemetry: {error}");
            return ExitCode::FAILURE;
        }
    };

    let outcome = run(config).await;
    telemetry.shutdown().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("backend: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until a shutdown signal; every error names what to fix.
async fn run(config: Config) -> Result<(), Box<dyn Error>> {
    let catalog = match &config.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::bundled(),
    };
    let bind = |flag: &'static str, address| async move {
        TcpListener::bind(address)
            .await
            .map_err(|error| format!("{flag} {address}: cannot bind: {error}"))
    };
    let public = bind("--listen", config.listen).await?;
    let admin = bind("--admin-listen", config.admin_listen).await?;
    let metrics = telemetry::metrics::install()?;

    let faults = config.faults();
    tracing::info!(
        address = %public.local_addr()?,
        admin_address = %admin.local_addr()?,
        products = catalog.len(),
        error_rate = faults.error_rate,
        latency_ms = config.latency_ms,
        error_code = resilient_catalog::grpc_code::name(faults.code),
        "listening"
    );
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown::signal().await;
            stop.cancel();
        }
    });
    let backend = Backend::new(catalog, faults);
    let admin = backend.serve_admin(admin, metrics, stop.clone().cancelled_owned());
    let public = backend.clone().serve(public, stop.cancelled_owned());
    tokio::try_join!(public, admin)?;
    tracing::info!("stopped");
    Ok(())
}
