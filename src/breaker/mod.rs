//! A circuit breaker as tower middleware: it stops calling a service that
//! keeps failing, answers at once instead, and lets a trial call through
//! after a while to find out whether the service is back.
//!
//! The semantics are those of Opossum and resilience4j, and of what their
//! users keep asking for:
//!
//! * a time-based rolling window of buckets, whose memory does not grow
//!   with traffic, counting successes, failures, timeouts, slow calls,
//!   rejections and short-circuits apart; refused calls are in no rate;
//! * the circuit opens when (failures + timeouts) / calls reaches (`>=`)
//!   the threshold, or slow calls / calls reaches its own, with at least
//!   the volume threshold of calls in the window;
//! * half-open admits exactly N trials, however many callers race for
//!   them; a dropped trial gives its slot back, any failed trial reopens,
//!   N successes close, and half-open that waits too long reopens;
//! * the reset timeout can grow with each reopening, up to a cap;
//! * a result that arrives after the state moved on is counted but moves
//!   nothing;
//! * operators can force it open or closed, disable it, make it count
//!   without tripping, or reset it.
//!
//! A call through a closed circuit takes no lock and allocates nothing.
//!
//! # Layout
//!
//! * [`BreakerConfig`]: thresholds and timings, validated once.
//! * `window`: the lock-free rolling window and its [`WindowCounts`].
//! * [`Circuit`]: the state machine over the window. [`Permit`]s tie each
//!   admitted call to it.
//! * [`CircuitBreakerLayer`] / [`CircuitBreaker`]: the tower plumbing around
//!   any `Service`; [`Classify`] decides which outcomes are failures, and
//!   [`GrpcFailureCodes`] is that decision for gRPC, made in one place.
//! * [`CircuitRegistry`]: one circuit per name (per method, say), bounded.

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
pub use error::{BreakerError, CircuitOpen, Rejection};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use registry::CircuitRegistry;
pub use service::CircuitBreaker;
pub use window::WindowCounts;
