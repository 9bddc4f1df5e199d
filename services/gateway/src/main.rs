//! The `gateway` binary: parses the flags, starts telemetry, serves until
//! SIGTERM or SIGINT, then flushes the spans.

use std::process::ExitCode;

use clap::Parser as _;
use gateway::{Config, Gateway};
use resilient_catalog::{shutdown, telemetry};
use tokio::net::TcpListener;

/// Why the gateway stopped, and the exit code that says so.
enum Failure {
    /// A setting that cannot work: exit code 2, as clap's own refusals.
    Config(String),
    /// A failure while starting or serving: exit code 1.
    Run(String),
}

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
    let gateway = Gateway::new(&config).map_err(|error| Failure::Config(error.to_string()))?;
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
