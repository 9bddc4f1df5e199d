//! The errors a breaker adds to those of the service it wraps.

use std::{fmt, sync::Arc, time::Duration};

/// The call was not made: the circuit is open, or half-open with its trial
/// call in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    circuit: Arc<str>,
    retry_after: Duration,
}

impl CircuitOpen {
    pub(crate) fn new(circuit: Arc<str>, retry_after: Duration) -> Self {
        Self {
            circuit,
            retry_after,
        }
    }

    /// The name of the circuit that rejected the call.
    pub fn circuit(&self) -> &str {
        &self.circuit
    }

    /// How long until the circuit admits a trial call: the delay a client
    /// should wait before it retries.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit {} is open; next trial call in {:.1}s",
            self.circuit,
            self.retry_after.as_secs_f64()
        )
    }
}

impl std::error::Error for CircuitOpen {}

/// The error of a [`CircuitBreaker`](super::CircuitBreaker): the call was
/// rejected, or the wrapped service failed.
///
/// An enum rather than a boxed error, so that callers match on it without
/// downcasting and a rejection costs no allocation.
#[derive(Debug)]
pub enum BreakerError<E> {
    /// The circuit rejected the call; the service was not called.
    Open(CircuitOpen),
    /// The service's own error.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open(open) => open.fmt(f),
            BreakerError::Inner(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BreakerError::Open(open) => Some(open),
            BreakerError::Inner(error) => Some(error),
        }
    }
}
