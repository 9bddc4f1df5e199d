//! The errors a breaker adds to those of the service it wraps.

use std::{fmt, time::Duration};

/// Why a circuit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The circuit is open; trial calls are due after the reset timeout.
    Open,
    /// The circuit is half-open and every trial slot is taken.
    HalfOpenBusy,
    /// An operator forced the circuit open.
    ForcedOpen,
}

/// The call was not made: the circuit refused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    circuit: &'static str,
    rejection: Rejection,
    retry_after: Option<Duration>,
}

impl CircuitOpen {
    pub(crate) fn new(
        circuit: &'static str,
        rejection: Rejection,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            circuit,
            rejection,
            retry_after,
        }
    }

    /// The name of the circuit that refused the call.
    pub fn circuit(&self) -> &'static str {
        self.circuit
    }

    /// Why it refused.
    pub fn rejection(&self) -> Rejection {
        self.rejection
    }

    /// For an open circuit, how long until it admits trial calls: the delay
    /// a client should wait before it retries. `None` when no time is
    /// known: trials in flight, or an operator's decision.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let circuit = &self.circuit;
        match (self.rejection, self.retry_after) {
            (Rejection::Open, Some(delay)) => write!(
                f,
                "circuit {circuit} is open; next trial call in {:.1}s",
                delay.as_secs_f64()
            ),
            (Rejection::Open, None) => write!(f, "circuit {circuit} is open"),
            (Rejection::HalfOpenBusy, _) => write!(
                f,
                "circuit {circuit} is half-open and its trial calls are in flight"
            ),
            (Rejection::ForcedOpen, _) => {
                write!(f, "circuit {circuit} is forced open by an operator")
            }
        }
    }
}

impl std::error::Error for CircuitOpen {}

/// The error of a [`CircuitBreaker`](super::CircuitBreaker): the call was
/// refused, or the wrapped service failed.
///
/// An enum rather than a boxed error, so that callers match on it without
/// downcasting and a refusal costs no allocation.
#[derive(Debug)]
pub enum BreakerError<E> {
    /// The circuit refused the call; the service was not called.
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
