//! Why the gateway could not answer, as the gRPC status the client sees:
//! every failure of the backend path becomes `UNAVAILABLE` here, and
//! nowhere else.

use bytes::Bytes;
use resilient_catalog::{breaker::BreakerError, grpc_code};
use tonic::{Code, Status, metadata::MetadataMap};
use tonic_types::{ErrorDetails, StatusExt as _};

/// A status that every caller sharing one backend call can be given: tonic's
/// `Status` is not `Clone`, so its parts are kept and a new one made for
/// each caller.
#[derive(Clone, Debug)]
pub(crate) struct SharedStatus {
    code: Code,
    message: String,
    details: Bytes,
    metadata: MetadataMap,
}

impl SharedStatus {
    /// The `NOT_FOUND` of a cached negative answer.
    pub(crate) fn not_found() -> Self {
        Self::from(&Status::not_found(
            "no such product (a cached answer of the backend's)",
        ))
    }

    /// A status for one caller.
    pub(crate) fn to_status(&self) -> Status {
        Status::with_details_and_metadata(
            self.code,
            self.message.clone(),
            self.details.clone(),
            self.metadata.clone(),
        )
    }
}

impl From<&Status> for SharedStatus {
    fn from(status: &Status) -> Self {
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            details: Bytes::copy_from_slice(status.details()),
            metadata: status.metadata().clone(),
        }
    }
}

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
    fn a_shared_status_keeps_every_part() {
        let original = unavailable(&BreakerError::Inner(Status::internal("boom")));
        let mut original = original;
        original
            .metadata_mut()
            .insert("x-extra", "1".parse().unwrap());
        let copy = SharedStatus::from(&original).to_status();
        assert_eq!(copy.code(), original.code());
        assert_eq!(copy.message(), original.message());
        assert_eq!(copy.details(), original.details());
        assert_eq!(copy.metadata().get("x-extra").unwrap(), "1");
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
