//! A circuit breaker as tower middleware: it stops calling a service that
//! keeps failing, answers at once instead, and lets a trial call through
//! after a while to find out whether the service is back.
//!
//! * [`BreakerConfig`]: thresholds and timings, validated once.
//! * [`Circuit`]: the state machine (closed, open, half-open) over a
//!   rolling window of counts. [`Permit`]s tie each admitted call to it.
//! * [`CircuitBreakerLayer`] / [`CircuitBreaker`]: the tower plumbing around
//!   any `Service`; [`Classify`] decides which outcomes are failures, and
//!   [`GrpcFailureCodes`] is that decision for gRPC, made in one place.
//! * [`CircuitRegistry`]: one circuit per name, for example per method.

mod circuit;
mod classify;
mod config;
mod error;
mod future;
mod layer;
mod registry;
mod service;
mod window;

pub use circuit::{Circuit, CircuitSnapshot, CircuitState, Outcome, Permit};
pub use classify::{Classify, GrpcFailureCodes};
pub use config::{BreakerConfig, InvalidBreakerConfig};
pub use error::{BreakerError, CircuitOpen};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use registry::CircuitRegistry;
pub use service::CircuitBreaker;
pub use window::WindowCounts;
