//! The breaker's settings, checked once when they are made.

use std::time::Duration;

/// When a circuit opens and how long it stays open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// The circuit opens when failures / (successes + failures) over the
    /// window reaches this percentage (1 to 100), as in Opossum and
    /// resilience4j: with 50, one failure in two calls opens it.
    pub failure_threshold_percent: u8,
    /// The fewest calls (successes + failures) the window must hold before
    /// its failure rate may open the circuit, so that one early failure does
    /// not open it. 0 lets a single failure open it.
    pub volume_threshold: u32,
    /// How long an open circuit rejects calls before it admits a trial call.
    pub reset_timeout: Duration,
    /// How far back the rolling window counts.
    pub window: Duration,
    /// How many buckets the window is cut into; counts expire one bucket at
    /// a time, so more buckets expire them more smoothly.
    pub buckets: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold_percent: 50,
            volume_threshold: 5,
            reset_timeout: Duration::from_secs(10),
            window: Duration::from_secs(10),
            buckets: 10,
        }
    }
}

/// A [`BreakerConfig`] that cannot work, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBreakerConfig {
    /// The threshold is 0 or above 100.
    #[error("failure_threshold_percent must be between 1 and 100, got {0}")]
    FailureThreshold(u8),
    /// The reset timeout is zero.
    #[error("reset_timeout must be longer than zero")]
    ResetTimeout,
    /// The bucket count is zero or above the limit.
    #[error("buckets must be between 1 and {max}, got {got}", max = BreakerConfig::MAX_BUCKETS)]
    Buckets {
        /// The bucket count given.
        got: u32,
    },
    /// The window is too short to cut into the buckets.
    #[error("window ({window:?}) must be at least 1ms per bucket ({buckets} buckets)")]
    Window {
        /// The window given.
        window: Duration,
        /// The bucket count given.
        buckets: u32,
    },
}

impl BreakerConfig {
    /// The most buckets a window may have; memory per circuit is fixed by it.
    pub const MAX_BUCKETS: u32 = 1_000;

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), InvalidBreakerConfig> {
        if !(1..=100).contains(&self.failure_threshold_percent) {
            return Err(InvalidBreakerConfig::FailureThreshold(
                self.failure_threshold_percent,
            ));
        }
        if self.reset_timeout.is_zero() {
            return Err(InvalidBreakerConfig::ResetTimeout);
        }
        if !(1..=Self::MAX_BUCKETS).contains(&self.buckets) {
            return Err(InvalidBreakerConfig::Buckets { got: self.buckets });
        }
        if self.window < Duration::from_millis(1) * self.buckets {
            return Err(InvalidBreakerConfig::Window {
                window: self.window,
                buckets: self.buckets,
            });
        }
        Ok(())
    }

    /// The span of time each bucket counts.
    pub fn bucket_len(&self) -> Duration {
        self.window / self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid() {
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn each_bad_value_is_named() {
        let bad = |change: fn(&mut BreakerConfig)| {
            let mut config = BreakerConfig::default();
            change(&mut config);
            config.validate().unwrap_err().to_string()
        };
        assert!(
            bad(|c| c.failure_threshold_percent = 150).starts_with("failure_threshold_percent")
        );
        assert!(bad(|c| c.failure_threshold_percent = 0).starts_with("failure_threshold_percent"));
        assert!(bad(|c| c.reset_timeout = Duration::ZERO).starts_with("reset_timeout"));
        assert!(bad(|c| c.buckets = 0).starts_with("buckets"));
        assert!(bad(|c| c.window = Duration::from_micros(10)).starts_with("window"));
    }
}
