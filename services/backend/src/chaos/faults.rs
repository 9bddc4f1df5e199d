//! The faults in force, shared between the chaos service that changes them
//! and the catalog calls that suffer them.

use std::sync::{Arc, PoisonError, RwLock};

use resilient_catalog::grpc_code;
use tonic::Status;

use super::{FaultSettings, InvalidFault};

/// A shared handle to the faults in force; clones see the same faults.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Read by every catalog call, written rarely. The settings are copied
    /// out, so the lock is held for a few instructions only, never across
    /// an `.await`.
    settings: Arc<RwLock<FaultSettings>>,
}

impl Faults {
    /// Faults that start with `settings`, used as given: check them first
    /// with [`FaultSettings::validate`], as the command line does.
    pub fn new(settings: FaultSettings) -> Self {
        Self {
            settings: Arc::new(RwLock::new(settings)),
        }
    }

    /// The faults in force.
    pub fn get(&self) -> FaultSettings {
        // The settings are one `Copy` value, written whole: a writer that
        // panicked cannot have left them half-changed.
        *self.settings.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the faults for the calls that arrive from now on, and
    /// returns them; invalid settings change nothing.
    pub fn set(&self, settings: FaultSettings) -> Result<FaultSettings, InvalidFault> {
        let settings = settings.validate()?;
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings;
        tracing::info!(
            error_rate = settings.error_rate,
            latency_ms = settings.latency.as_millis(),
            code = grpc_code::name(settings.code),
            "faults changed"
        );
        Ok(settings)
    }

    /// Removes every fault.
    pub fn clear(&self) {
        // The default settings are valid.
        let _ = self.set(FaultSettings::default());
    }

    /// Applies the faults to one call: waits out the latency, then fails
    /// with the configured code at the configured rate.
    ///
    /// The wait is a Tokio sleep, so a call that its client cancels stops
    /// waiting, and tests with paused time do not wait at all.
    pub(crate) async fn inject(&self) -> Result<(), Status> {
        let settings = self.get();
        if !settings.latency.is_zero() {
            tokio::time::sleep(settings.latency).await;
        }
        // `random` is in [0, 1): a rate of 1 always fails, 0 never does.
        if settings.error_rate > 0.0 && rand::random::<f64>() < settings.error_rate {
            tracing::debug!(code = grpc_code::name(settings.code), "injecting a failure");
            return Err(Status::new(
                settings.code,
                format!(
                    "injected fault: the backend fails catalog calls with probability {} on purpose \
                     (see backend.v1.ChaosService/GetFaults)",
                    settings.error_rate
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::Code;

    use super::*;

    #[test]
    fn clones_share_the_settings() {
        let faults = Faults::default();
        let clone = faults.clone();
        let settings = FaultSettings {
            error_rate: 0.5,
            latency: Duration::from_millis(10),
            code: Code::Internal,
        };
        assert_eq!(clone.set(settings), Ok(settings));
        assert_eq!(faults.get(), settings);
        faults.clear();
        assert_eq!(clone.get(), FaultSettings::default());
    }

    #[test]
    fn invalid_settings_change_nothing() {
        let faults = Faults::default();
        let invalid = FaultSettings {
            error_rate: 2.0,
            ..FaultSettings::default()
        };
        assert_eq!(faults.set(invalid), Err(InvalidFault::ErrorRate(2.0)));
        assert_eq!(faults.get(), FaultSettings::default());
    }

    #[tokio::test]
    async fn no_faults_inject_nothing() {
        assert!(Faults::default().inject().await.is_ok());
    }

    #[tokio::test]
    async fn a_rate_of_one_always_fails_with_the_code() {
        let faults = Faults::new(FaultSettings {
            error_rate: 1.0,
            code: Code::DataLoss,
            ..FaultSettings::default()
        });
        for _ in 0..100 {
            let status = faults.inject().await.unwrap_err();
            assert_eq!(status.code(), Code::DataLoss);
            assert!(status.message().starts_with("injected fault: "));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_the_call() {
        let faults = Faults::new(FaultSettings {
            latency: Duration::from_secs(5),
            ..FaultSettings::default()
        });
        let start = tokio::time::Instant::now();
        faults.inject().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}
