//! The breaker's settings, checked once when they are made.

use std::time::Duration;

/// When a circuit opens, how long it stays open, and how it tries again.
///
/// The defaults follow Opossum where resilience4j and Opossum differ only
/// in taste: 50% of at least 5 calls over 10 s opens the circuit for 10 s,
/// then 1 trial call decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// The circuit opens when (failures + timeouts) / calls over the window
    /// reaches (`>=`) this percentage, 1 to 100, as in Opossum and
    /// resilience4j: with 50, one failure in two calls opens it.
    pub failure_threshold_percent: u8,
    /// The fewest calls (successes, failures and timeouts) the window must
    /// hold before a rate may open the circuit, so that one early failure
    /// does not. 0 lets a single failure open it.
    pub volume_threshold: u32,
    /// How long the circuit stays open before it admits trial calls, the
    /// first time it opens.
    pub reset_timeout: Duration,
    /// Each consecutive reopening (a failed trial, with no close between)
    /// multiplies the reset timeout by this factor; 1 keeps it constant.
    pub reset_timeout_multiplier: u32,
    /// The longest the reset timeout grows to.
    pub max_reset_timeout: Duration,
    /// How many trial calls half-open admits; that many successes close the
    /// circuit, and any failed trial reopens it.
    pub half_open_trials: u32,
    /// The longest the circuit stays half-open waiting for its trials to
    /// complete; past it, it reopens.
    pub half_open_max_duration: Duration,
    /// How far back the rolling window counts. At most an hour.
    pub window: Duration,
    /// How many buckets the window is cut into; counts expire one bucket at
    /// a time, so more buckets expire them more smoothly.
    pub buckets: u32,
    /// A call that takes at least this long is slow. `None` turns slow-call
    /// detection off (the default).
    pub slow_call_duration: Option<Duration>,
    /// The circuit opens when slow calls / calls over the window reaches
    /// this percentage (1 to 100), with the same volume threshold.
    pub slow_call_threshold_percent: u8,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold_percent: 50,
            volume_threshold: 5,
            reset_timeout: Duration::from_secs(10),
            reset_timeout_multiplier: 1,
            max_reset_timeout: Duration::from_secs(300),
            half_open_trials: 1,
            half_open_max_duration: Duration::from_secs(30),
            window: Duration::from_secs(10),
            buckets: 10,
            slow_call_duration: None,
            slow_call_threshold_percent: 100,
        }
    }
}

/// A [`BreakerConfig`] that cannot work, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBreakerConfig {
    /// The failure threshold is 0 or above 100.
    #[error("failure_threshold_percent must be between 1 and 100, got {0}")]
    FailureThreshold(u8),
    /// The slow-call threshold is 0 or above 100.
    #[error("slow_call_threshold_percent must be between 1 and 100, got {0}")]
    SlowCallThreshold(u8),
    /// The reset timeout is zero.
    #[error("reset_timeout must be longer than zero")]
    ResetTimeout,
    /// The multiplier is zero.
    #[error("reset_timeout_multiplier must be at least 1")]
    ResetTimeoutMultiplier,
    /// The reset timeout may not grow to its own start.
    #[error("max_reset_timeout ({max:?}) must be at least reset_timeout ({base:?})")]
    MaxResetTimeout {
        /// The reset timeout given.
        base: Duration,
        /// The cap given.
        max: Duration,
    },
    /// No trial call would ever be admitted.
    #[error("half_open_trials must be at least 1")]
    HalfOpenTrials,
    /// Half-open would reopen at once.
    #[error("half_open_max_duration must be longer than zero")]
    HalfOpenMaxDuration,
    /// The bucket count is zero or above the limit.
    #[error("buckets must be between 1 and {max}, got {got}", max = BreakerConfig::MAX_BUCKETS)]
    Buckets {
        /// The bucket count given.
        got: u32,
    },
    /// The window is too short for its buckets, or longer than an hour.
    #[error(
        "window ({window:?}) must be at most 1h and at least 1ms per bucket ({buckets} buckets)"
    )]
    Window {
        /// The window given.
        window: Duration,
        /// The bucket count given.
        buckets: u32,
    },
    /// A slow-call duration of zero would make every call slow.
    #[error("slow_call_duration must be longer than zero when set")]
    SlowCallDuration,
}

impl BreakerConfig {
    /// The most buckets a window may have; memory per circuit is fixed by it.
    pub const MAX_BUCKETS: u32 = 1_000;

    /// The longest window. Per-bucket counters are 32 bits wide: an hour
    /// keeps them far from overflow at any real call rate.
    pub const MAX_WINDOW: Duration = Duration::from_secs(3600);

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), InvalidBreakerConfig> {
        use InvalidBreakerConfig as Invalid;
        if !(1..=100).contains(&self.failure_threshold_percent) {
            return Err(Invalid::FailureThreshold(self.failure_threshold_percent));
        }
        if !(1..=100).contains(&self.slow_call_threshold_percent) {
            return Err(Invalid::SlowCallThreshold(self.slow_call_threshold_percent));
        }
        if self.reset_timeout.is_zero() {
            return Err(Invalid::ResetTimeout);
        }
        if self.reset_timeout_multiplier == 0 {
            return Err(Invalid::ResetTimeoutMultiplier);
        }
        if self.max_reset_timeout < self.reset_timeout {
            return Err(Invalid::MaxResetTimeout {
                base: self.reset_timeout,
                max: self.max_reset_timeout,
            });
        }
        if self.half_open_trials == 0 {
            return Err(Invalid::HalfOpenTrials);
        }
        if self.half_open_max_duration.is_zero() {
            return Err(Invalid::HalfOpenMaxDuration);
        }
        if !(1..=Self::MAX_BUCKETS).contains(&self.buckets) {
            return Err(Invalid::Buckets { got: self.buckets });
        }
        if self.window < Duration::from_millis(1) * self.buckets || self.window > Self::MAX_WINDOW {
            return Err(Invalid::Window {
                window: self.window,
                buckets: self.buckets,
            });
        }
        if self.slow_call_duration.is_some_and(|slow| slow.is_zero()) {
            return Err(Invalid::SlowCallDuration);
        }
        Ok(())
    }

    /// The span of time each bucket counts.
    pub fn bucket_len(&self) -> Duration {
        self.window / self.buckets
    }

    /// The reset timeout after `consecutive_opens` openings with no close
    /// between them (1 for the first): the base, multiplied once per
    /// reopening, up to the cap.
    pub fn reset_timeout_after(&self, consecutive_opens: u32) -> Duration {
        let mut timeout = self.reset_timeout;
        if self.reset_timeout_multiplier == 1 {
            return timeout;
        }
        // Each turn multiplies by at least 2, so this ends within 64 turns.
        for _ in 1..consecutive_opens {
            if timeout >= self.max_reset_timeout {
                break;
            }
            timeout = timeout.saturating_mul(self.reset_timeout_multiplier);
        }
        timeout.min(self.max_reset_timeout)
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
        type Change = fn(&mut BreakerConfig);
        let cases: [(Change, &str); 13] = [
            (
                |c| c.failure_threshold_percent = 150,
                "failure_threshold_percent",
            ),
            (
                |c| c.failure_threshold_percent = 0,
                "failure_threshold_percent",
            ),
            (
                |c| c.slow_call_threshold_percent = 0,
                "slow_call_threshold_percent",
            ),
            (|c| c.reset_timeout = Duration::ZERO, "reset_timeout"),
            (
                |c| c.reset_timeout_multiplier = 0,
                "reset_timeout_multiplier",
            ),
            (
                |c| c.max_reset_timeout = Duration::from_secs(1),
                "max_reset_timeout",
            ),
            (|c| c.half_open_trials = 0, "half_open_trials"),
            (
                |c| c.half_open_max_duration = Duration::ZERO,
                "half_open_max_duration",
            ),
            (|c| c.buckets = 0, "buckets"),
            (|c| c.buckets = 1001, "buckets"),
            (|c| c.window = Duration::from_micros(10), "window"),
            (|c| c.window = Duration::from_secs(3601), "window"),
            (
                |c| c.slow_call_duration = Some(Duration::ZERO),
                "slow_call_duration",
            ),
        ];
        for (change, field) in cases {
            let message = bad(change);
            assert!(message.starts_with(field), "{field}: {message}");
        }
    }

    #[test]
    fn the_reset_timeout_grows_by_the_multiplier_up_to_the_cap() {
        let config = BreakerConfig {
            reset_timeout: Duration::from_secs(10),
            reset_timeout_multiplier: 2,
            max_reset_timeout: Duration::from_secs(60),
            ..BreakerConfig::default()
        };
        let timeouts: Vec<_> = (1..=6)
            .map(|n| config.reset_timeout_after(n).as_secs())
            .collect();
        assert_eq!(timeouts, [10, 20, 40, 60, 60, 60]);
        // A huge count neither overflows nor loops for long.
        assert_eq!(
            config.reset_timeout_after(u32::MAX),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_multiplier_of_one_keeps_the_reset_timeout() {
        let config = BreakerConfig::default();
        assert_eq!(config.reset_timeout_after(1), Duration::from_secs(10));
        assert_eq!(config.reset_timeout_after(9), Duration::from_secs(10));
        assert_eq!(
            config.reset_timeout_after(u32::MAX),
            Duration::from_secs(10)
        );
    }
}
