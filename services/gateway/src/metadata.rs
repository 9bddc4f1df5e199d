//! The response metadata that tells a client where an answer came from:
//! `x-cache`, `x-cache-age` and `x-circuit-state`.

use std::time::Duration;

use resilient_catalog::breaker::CircuitState;
use tonic::metadata::{MetadataMap, MetadataValue};

/// Where an answer came from, as `x-cache` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheStatus {
    /// Not from the cache: the backend answered just now (or the gateway
    /// itself refused the request).
    Miss,
    /// A cached answer within its fresh window: the backend was not called.
    Hit {
        /// How long ago the answer was stored.
        age: Duration,
    },
    /// A cached answer served because the backend failed, timed out or its
    /// circuit is open.
    Stale {
        /// How long ago the answer was stored.
        age: Duration,
    },
}

impl CacheStatus {
    /// The `x-cache` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Miss => "miss",
            CacheStatus::Hit { .. } => "hit",
            CacheStatus::Stale { .. } => "stale",
        }
    }
}

/// Writes `x-cache`, `x-cache-age` (on cached answers, in whole seconds) and
/// `x-circuit-state`.
pub(crate) fn insert(metadata: &mut MetadataMap, cache: CacheStatus, circuit: CircuitState) {
    metadata.insert("x-cache", MetadataValue::from_static(cache.as_str()));
    if let CacheStatus::Hit { age } | CacheStatus::Stale { age } = cache {
        metadata.insert("x-cache-age", MetadataValue::from(age.as_secs()));
    }
    metadata.insert(
        "x-circuit-state",
        MetadataValue::from_static(circuit.as_str()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_answer_says_its_age_in_seconds() {
        let mut metadata = MetadataMap::new();
        insert(
            &mut metadata,
            CacheStatus::Stale {
                age: Duration::from_millis(42_900),
            },
            CircuitState::Open,
        );
        assert_eq!(metadata.get("x-cache").unwrap(), "stale");
        assert_eq!(metadata.get("x-cache-age").unwrap(), "42");
        assert_eq!(metadata.get("x-circuit-state").unwrap(), "open");
    }

    #[test]
    fn a_fresh_answer_has_no_age() {
        let mut metadata = MetadataMap::new();
        insert(&mut metadata, CacheStatus::Miss, CircuitState::HalfOpen);
        assert_eq!(metadata.get("x-cache").unwrap(), "miss");
        assert!(metadata.get("x-cache-age").is_none());
        assert_eq!(metadata.get("x-circuit-state").unwrap(), "half_open");
    }
}
