//! gRPC status codes by their canonical names (`UNAVAILABLE`, not
//! `Unavailable`), as they appear in flags, span attributes and log lines.

use tonic::Code;

/// Every code, `OK` first, in numeric order.
pub const ALL: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// The canonical upper-case name of a gRPC status code.
pub fn name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The code with this canonical name, in any case.
pub fn from_name(name_: &str) -> Option<Code> {
    ALL.into_iter()
        .find(|code| name(*code).eq_ignore_ascii_case(name_.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grpc_spec() {
        assert_eq!(name(Code::Ok), "OK");
        assert_eq!(name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(name(Code::from_i32(14)), "UNAVAILABLE");
        assert_eq!(name(Code::from_i32(99)), "UNKNOWN");
    }

    #[test]
    fn names_read_back_in_any_case() {
        for code in ALL {
            assert_eq!(from_name(name(code)), Some(code));
        }
        assert_eq!(
            from_name(" deadline_exceeded "),
            Some(Code::DeadlineExceeded)
        );
        assert_eq!(from_name("BROKEN"), None);
    }

    #[test]
    fn all_is_in_numeric_order() {
        for (number, code) in ALL.into_iter().enumerate() {
            assert_eq!(code as usize, number);
        }
    }
}
