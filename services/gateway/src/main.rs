//! The `gateway` binary: parses the flags, starts telemetry, serves until
//! SIGTERM or SIGINT, then flushes the spans.

use std::process::ExitCode;

use clap::Parser as _;
use gateway::{Config, Gateway};
use resilient_catalog::{shutdown, telemetry};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
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
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let gateway = Gateway::new(&config).map_err(|error| error.to_string())?;
    let bind = |flag: &'static str, address| async move {
        TcpListener::bind(address)
            .await
            .map_err(|error| format!("{flag} {address}: {error}"))
    };
    let public = bind("--listen", config.listen).await?;
    let admin = bind("--admin-listen", config.admin_listen).await?;
    tracing::info!(
        listen = %public.local_addr().map_err(|e| e.to_string())?,
        admin_listen = %admin.local_addr().map_err(|e| e.to_string())?,
        backend_url = %config.backend_url,
        cache = gateway.cache().store_name(),
        "gateway listening"
    );
    gateway
        .serve(public, admin, shutdown::signal())
        .await
        .map_err(|error| format!("server error: {error}"))?;
    tracing::info!("gateway stopped");
    Ok(())
}
