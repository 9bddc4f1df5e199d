//! The catalog contract and the reusable pieces of a gateway that stays up
//! when the service behind it is slow or down.
//!
//! # Layout
//!
//! * [`proto`]: the code generated from `proto/`: the `catalog.v1` contract
//!   that both services serve, the backend's `backend.v1` fault injection and
//!   the gateway's `gateway.v1` circuit administration.
//! * [`validate`]: the request rules of the catalog contract, shared so that
//!   the backend and the gateway reject bad input the same way.
//! * [`breaker`]: a tower circuit breaker. It knows services, outcomes and
//!   time, nothing of caches or of the catalog.
//! * [`cache`]: the last-known-good store (in process, or Redis through
//!   `fred`). It knows keys, bytes and ages, nothing of gRPC.
//! * [`coalesce`]: concurrent identical requests sharing one call.
//! * [`grpc_code`]: gRPC status codes by their canonical names.
//! * [`telemetry`]: tracing and OpenTelemetry set-up, the tower layers
//!   that carry the W3C trace context across gRPC calls, and Prometheus
//!   metrics.
//! * [`server`]: what every listener serves besides its own services:
//!   health, [`reflection`] in both versions, the trace and metrics layers,
//!   and `/metrics` on admin listeners.
//! * [`unknown_method`]: `UNIMPLEMENTED` with a message that names the
//!   method, for calls to methods a listener does not serve.
//! * [`shutdown`]: the signal that starts a graceful shutdown.
//! * [`health_check`]: the binaries' `healthcheck` subcommand, for
//!   container health checks.

pub mod breaker;
pub mod cache;
pub mod coalesce;
pub mod deadline;
pub mod grpc_code;
pub mod health_check;
pub mod proto;
pub mod reflection;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod unknown_method;
pub mod validate;
