//! Which outcomes of a call count as failures of the service.

use tonic::{Code, Status};

use super::Outcome;
use crate::grpc_code;

/// Judges the result of a call made through a breaker.
pub trait Classify<T, E> {
    /// Whether `result` is a success, a failure or a timeout of the
    /// service.
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

/// The gRPC status codes that count as failures of the service. Every
/// other code, like `NOT_FOUND` or `INVALID_ARGUMENT`, is the caller's own
/// error and counts as a success: the service answered.
/// `DEADLINE_EXCEEDED`, when it is a failure code, counts as a timeout.
///
/// A gateway asks this one value both what trips a circuit and what
/// triggers its fallback, so the two never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcFailureCodes {
    /// Bit `n` set means code `n` is a failure.
    mask: u32,
}

impl GrpcFailureCodes {
    /// `UNAVAILABLE` (which is also what tonic reports for transport errors
    /// such as a refused connection), `DEADLINE_EXCEEDED`, `INTERNAL`,
    /// `UNKNOWN` and `RESOURCE_EXHAUSTED`.
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

    /// Reads a comma-separated list of code names, in any case, such as
    /// `UNAVAILABLE,INTERNAL`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut codes = Vec::new();
        for name in list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            match grpc_code::from_name(name) {
                Some(Code::Ok) => return Err("OK is never a failure".into()),
                Some(code) => codes.push(code),
                None => {
                    let names: Vec<_> = grpc_code::ALL[1..]
                        .iter()
                        .map(|c| grpc_code::name(*c))
                        .collect();
                    return Err(format!(
                        "{name:?} is not a gRPC status code; use names from {}",
                        names.join(", ")
                    ));
                }
            }
        }
        if codes.is_empty() {
            return Err("name at least one code".into());
        }
        Ok(Self::from_codes(&codes))
    }

    /// Whether a status with this code is a failure of the service.
    pub fn is_failure(&self, code: Code) -> bool {
        self.mask & (1 << (code as u32)) != 0
    }

    /// The failure codes, by name, in numeric order.
    pub fn names(&self) -> Vec<&'static str> {
        grpc_code::ALL
            .into_iter()
            .filter(|code| self.is_failure(*code))
            .map(grpc_code::name)
            .collect()
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
            Err(status) if self.is_failure(status.code()) => match status.code() {
                Code::DeadlineExceeded => Outcome::Timeout,
                _ => Outcome::Failure,
            },
            _ => Outcome::Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_is_classified() {
        let codes = GrpcFailureCodes::DEFAULT;
        let outcome = |code| codes.classify(&Err::<(), _>(Status::new(code, "")));
        for code in grpc_code::ALL {
            let expected = match code {
                Code::DeadlineExceeded => Outcome::Timeout,
                Code::Unavailable | Code::Internal | Code::Unknown | Code::ResourceExhausted => {
                    Outcome::Failure
                }
                _ => Outcome::Success,
            };
            assert_eq!(outcome(code), expected, "{code:?}");
        }
        assert_eq!(codes.classify(&Ok::<_, Status>(())), Outcome::Success);
    }

    #[test]
    fn ok_is_never_a_failure() {
        assert!(!GrpcFailureCodes::from_codes(&[Code::Ok]).is_failure(Code::Ok));
    }

    #[test]
    fn parses_a_list_of_names() {
        let codes = GrpcFailureCodes::parse("unavailable, DATA_LOSS,").unwrap();
        assert_eq!(codes.names(), ["UNAVAILABLE", "DATA_LOSS"]);
        assert_eq!(
            GrpcFailureCodes::parse(&GrpcFailureCodes::DEFAULT.names().join(",")),
            Ok(GrpcFailureCodes::DEFAULT)
        );
        assert!(
            GrpcFailureCodes::parse("UNAVAILABLE,BROKEN")
                .unwrap_err()
                .contains("BROKEN")
        );
        assert!(GrpcFailureCodes::parse("OK").is_err());
        assert!(GrpcFailureCodes::parse(" , ").is_err());
    }
}
