//! Which outcomes of a call count as failures of the service.

use tonic::{Code, Status};

use super::Outcome;

/// Judges the result of a call made through a breaker.
pub trait Classify<T, E> {
    /// Whether `result` is a success or a failure of the service.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The gRPC status codes that count as failures of the service; every other
/// code, like `NOT_FOUND` or `INVALID_ARGUMENT`, is the caller's own error
/// and counts as a success: the service answered.
///
/// The gateway asks this one value both what trips a circuit and what
/// triggers the cache fallback, so the two never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcFailureCodes {
    /// Bit `n` set means code `n` is a failure.
    mask: u32,
}

impl GrpcFailureCodes {
    /// `UNAVAILABLE` (which is also what tonic reports for transport errors
    /// such as a refused connection), `DEADLINE_EXCEEDED` (a timeout),
    /// `INTERNAL`, `UNKNOWN` and `RESOURCE_EXHAUSTED`.
    pub const DEFAULT: Self = Self::from_codes(&[
        Code::Unavailable,
        Code::DeadlineExceeded,
        Code::Internal,
        Code::Unknown,
        Code::ResourceExhausted,
    ]);

    /// Exactly these codes are failures. `OK` never is.
    pub const fn from_codes(codes: &[Code]) -> Self {
        let mut mask = 0;
        let mut i = 0;
        while i < codes.len() {
            mask |= 1 << (codes[i] as u32);
            i += 1;
        }
        Self {
            mask: mask & !1, // `OK` (bit 0) is never a failure
        }
    }

    /// Whether a status with this code is a failure of the service.
    pub fn is_failure(&self, code: Code) -> bool {
        self.mask & (1 << (code as u32)) != 0
    }
}

impl Default for GrpcFailureCodes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl<T> Classify<T, Status> for GrpcFailureCodes {
    fn classify(&self, result: &Result<T, Status>) -> Outcome {
        match result {
            Err(status) if self.is_failure(status.code()) => Outcome::Failure,
            _ => Outcome::Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_failures_are_the_services_fault_only() {
        let codes = GrpcFailureCodes::DEFAULT;
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Unknown,
            Code::ResourceExhausted,
        ] {
            assert!(codes.is_failure(code), "{code:?}");
        }
        for code in [
            Code::Ok,
            Code::Cancelled,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::DataLoss,
            Code::Unauthenticated,
        ] {
            assert!(!codes.is_failure(code), "{code:?}");
        }
    }

    #[test]
    fn ok_is_never_a_failure() {
        assert!(!GrpcFailureCodes::from_codes(&[Code::Ok]).is_failure(Code::Ok));
    }

    #[test]
    fn classifies_results() {
        let codes = GrpcFailureCodes::DEFAULT;
        assert_eq!(codes.classify(&Ok::<_, Status>(())), Outcome::Success);
        assert_eq!(
            codes.classify(&Err::<(), _>(Status::not_found("no"))),
            Outcome::Success
        );
        assert_eq!(
            codes.classify(&Err::<(), _>(Status::unavailable("down"))),
            Outcome::Failure
        );
    }
}
