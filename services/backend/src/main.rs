//! The `backend` binary: reads its flags, loads the catalog and serves it
//! until SIGTERM or SIGINT.

use std::{error::Error, process::ExitCode};

use backend::{Backend, Catalog, Config};
use clap::Parser as _;
use resilient_catalog::{
    shutdown,
    telemetry::{self, TelemetryConfig},
};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints a message naming the flag, and exits, on a bad value.
    let config = Config::parse();
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
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| format!("--listen {}: cannot bind: {error}", config.listen))?;
    let address = listener.local_addr()?;

    let faults = config.faults();
    tracing::info!(
        %address,
        products = catalog.len(),
        error_rate = faults.error_rate,
        latency_ms = config.latency_ms,
        error_code = resilient_catalog::grpc_code::name(faults.code),
        "listening"
    );
    Backend::new(catalog, faults)
        .serve(listener, shutdown::signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}
