//! Why the gateway could not answer, as the gRPC status the client sees:
//! every failure of the backend path becomes `UNAVAILABLE` here, and
//! nowhere else.

use resilient_catalog::{breaker::BreakerError, grpc_code};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The answer when the backend could not answer and no cached answer
/// exists. The message says why; while the circuit is open the status
/// carries a `google.rpc.RetryInfo` with the delay until the next trial.
pub(crate) fn unavailable(error: &BreakerError<Status>) -> Status {
    match error {
        BreakerError::Open(open) => match open.retry_after() {
            Some(delay) => Status::with_error_details(
                Code::Unavailable,
                format!("{open}, and no cached answer exists"),
                ErrorDetails::with_retry_info(Some(delay)),
            ),
            None => Status::unavailable(format!("{open}, and no cached answer exists")),
        },
        BreakerError::Inner(status) if status.code() == Code::DeadlineExceeded => {
            Status::unavailable(format!(
                "the backend timed out ({}), and no cached answer exists",
                status.message()
            ))
        }
        BreakerError::Inner(status) => Status::unavailable(format!(
            "the backend failed with {}: {}, and no cached answer exists",
            grpc_code::name(status.code()),
            status.message()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use resilient_catalog::breaker::{BreakerConfig, Circuit, Outcome};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_forced_open_circuit_gives_no_retry_delay() {
        let circuit = Circuit::new("/m", BreakerConfig::default());
        circuit.force_open();
        let status = unavailable(&BreakerError::Open(circuit.try_acquire().unwrap_err()));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("forced open by an operator"),
            "{}",
            status.message()
        );
        assert!(status.get_details_retry_info().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_circuit_says_when_to_retry() {
        let circuit = Circuit::new(
            "/catalog.v1.CatalogService/GetProduct",
            BreakerConfig {
                volume_threshold: 0,
                ..BreakerConfig::default()
            },
        );
        circuit.try_acquire().unwrap().record(Outcome::Failure);
        let open = circuit.try_acquire().unwrap_err();

        let status = unavailable(&BreakerError::Open(open));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("is open"), "{}", status.message());
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(10)));
    }

    #[test]
    fn a_failed_backend_says_how() {
        let status = unavailable(&BreakerError::Inner(Status::internal("boom")));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("INTERNAL: boom"),
            "{}",
            status.message()
        );
        assert!(status.get_details_retry_info().is_none());

        let status = unavailable(&BreakerError::Inner(Status::deadline_exceeded("3000ms")));
        assert!(
            status.message().contains("timed out"),
            "{}",
            status.message()
        );
    }
}
