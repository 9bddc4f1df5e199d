//! Tracing for both services: log lines through `tracing-subscriber`, spans
//! to an OTLP collector through OpenTelemetry, and the W3C trace context
//! carried across every gRPC call so that one request is one trace. And
//! their [`metrics`], for Prometheus.

mod grpc;
mod log_fields;
pub mod metrics;

pub use grpc::{
    ClientTraceLayer, InjectTraceContext, InjectTraceContextLayer, RecordStatus, RpcClassifier,
    RpcSpan, RpcTraceLayer, ServerTraceLayer, client_layer, server_layer,
};

use std::io::IsTerminal as _;

use opentelemetry::{InstrumentationScope, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

/// The OpenTelemetry semantic conventions that our span attributes follow.
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.42.0";

/// Where spans go and under which service name, read from the standard
/// OpenTelemetry environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `service.name` of every span: `OTEL_SERVICE_NAME`, or the binary's
    /// own name.
    pub service_name: String,
    /// The OTLP/gRPC collector, from `OTEL_EXPORTER_OTLP_ENDPOINT`. `None`
    /// exports nothing; the trace context is still propagated, so a service
    /// that does export keeps whole traces.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads `OTEL_SERVICE_NAME` and `OTEL_EXPORTER_OTLP_ENDPOINT`; an unset
    /// or empty variable takes the default.
    pub fn from_env(default_service_name: &str) -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        Self {
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service_name.into()),
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        }
    }
}

/// Why telemetry could not start. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` does not parse as a filter.
    #[error("RUST_LOG: {0}")]
    Filter(#[from] tracing_subscriber::filter::FromEnvError),
    /// The OTLP exporter refused the endpoint.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?}: {source}")]
    Exporter {
        /// The endpoint as given.
        endpoint: String,
        /// What the exporter said.
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A global subscriber was installed already.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes the spans that
/// are still queued.
#[derive(Debug)]
pub struct Telemetry {
    /// Owns the batch span processor, whose queue must be flushed at exit.
    provider: SdkTracerProvider,
}

/// Installs the global subscriber (log lines filtered by `RUST_LOG`, default
/// `info`, and spans to OpenTelemetry) and the W3C trace-context propagator.
///
/// Call it inside the Tokio runtime: the OTLP exporter's gRPC channel is
/// driven by that runtime.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut provider = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|source| TelemetryError::Exporter {
                endpoint: endpoint.clone(),
                source,
            })?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    let tracer = provider.tracer_with_scope(
        InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_schema_url(SCHEMA_URL)
            .build(),
    );

    let filter = EnvFilter::builder()
        .with_default_directive(tracing::Level::INFO.into())
        .from_env()?;
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(log_fields::LogFields)
                .with_ansi(std::io::stdout().is_terminal()),
        )
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()?;

    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(service.name = %config.service_name, %endpoint, "exporting spans over OTLP");
    }
    Ok(Telemetry { provider })
}

impl Telemetry {
    /// Exports the queued spans and stops the exporter.
    ///
    /// The batch processor exports from its own thread, through a gRPC
    /// channel that this runtime drives, and its shutdown blocks until the
    /// export is done. Blocking a runtime thread on it can deadlock (always
    /// so on a current-thread runtime), so the wait runs on a blocking
    /// thread while the runtime stays free to drive the export.
    pub async fn shutdown(self) {
        let provider = self.provider;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "spans may have been lost at shutdown"),
            Err(error) => tracing::warn!(%error, "the span flush did not complete"),
        }
    }
}
