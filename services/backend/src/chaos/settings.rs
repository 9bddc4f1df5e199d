//! The faults to inject, as one plain value checked in one place, whether
//! they come from the command line or from `SetFaults`.

use std::time::Duration;

use tonic::Code;

/// The faults that every catalog call suffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultSettings {
    /// The probability, from 0 to 1, that a call fails with `code`.
    pub error_rate: f64,
    /// A delay before every call answers, to make the backend slow.
    pub latency: Duration,
    /// The status that injected failures carry; never `OK`.
    pub code: Code,
}

impl Default for FaultSettings {
    /// No faults; failures, once enabled, say `UNAVAILABLE`.
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            latency: Duration::ZERO,
            code: Code::Unavailable,
        }
    }
}

/// Why fault settings were refused. Each message names the field of
/// `backend.v1.SetFaultsRequest` at fault.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum InvalidFault {
    /// The error rate is not a probability.
    #[error("error_rate must be a probability from 0 to 1, got {0}")]
    ErrorRate(f64),
    /// The latency is longer than any test or demo needs.
    #[error(
        "latency_ms must be at most {}, got {}",
        FaultSettings::MAX_LATENCY.as_millis(),
        .0.as_millis()
    )]
    Latency(Duration),
    /// `OK` is not a failure.
    #[error("code must be a failure code, not OK")]
    OkCode,
    /// The number is not a gRPC status code.
    #[error("code {0} is not a gRPC status code")]
    UnknownCode(i32),
}

impl FaultSettings {
    /// The longest latency accepted: ten minutes.
    pub const MAX_LATENCY: Duration = Duration::from_millis(600_000);

    /// Returns the settings if every field is in range, or the first field
    /// that is not.
    pub fn validate(self) -> Result<Self, InvalidFault> {
        // `contains` is false for NaN, so NaN is refused too.
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(InvalidFault::ErrorRate(self.error_rate));
        }
        if self.latency > Self::MAX_LATENCY {
            return Err(InvalidFault::Latency(self.latency));
        }
        if self.code == Code::Ok {
            return Err(InvalidFault::OkCode);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_injects_nothing_and_is_valid() {
        let settings = FaultSettings::default();
        assert_eq!(settings.error_rate, 0.0);
        assert_eq!(settings.latency, Duration::ZERO);
        assert_eq!(settings.code, Code::Unavailable);
        assert_eq!(settings.validate(), Ok(settings));
    }

    #[test]
    fn values_in_range_are_accepted() {
        let settings = FaultSettings {
            error_rate: 1.0,
            latency: FaultSettings::MAX_LATENCY,
            code: Code::Internal,
        };
        assert_eq!(settings.validate(), Ok(settings));
    }

    #[test]
    fn errors_name_the_field() {
        let with_rate = |error_rate| FaultSettings {
            error_rate,
            ..FaultSettings::default()
        };
        for rate in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let error = with_rate(rate).validate().unwrap_err();
            assert!(error.to_string().starts_with("error_rate "), "{error}");
        }

        let slow = FaultSettings {
            latency: Duration::from_millis(600_001),
            ..FaultSettings::default()
        };
        assert_eq!(
            slow.validate().unwrap_err().to_string(),
            "latency_ms must be at most 600000, got 600001"
        );

        let ok = FaultSettings {
            code: Code::Ok,
            ..FaultSettings::default()
        };
        assert_eq!(
            ok.validate().unwrap_err().to_string(),
            "code must be a failure code, not OK"
        );
    }
}
