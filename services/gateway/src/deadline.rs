//! The caller's deadline, read from the `grpc-timeout` request header.
//!
//! tonic enforces this header on its server but does not expose the value;
//! the gateway needs it to pass the shorter of the caller's deadline and its
//! own budget on to the backend.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// The caller's timeout, if it sent a valid one.
///
/// The format is the gRPC spec's: at most 8 digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`). An invalid header is ignored, as tonic's own server
/// does.
pub(crate) fn caller_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Duration> {
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", value.parse().unwrap());
        caller_timeout(&metadata)
    }

    #[test]
    fn reads_every_unit() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
    }

    #[test]
    fn ignores_what_the_spec_does_not_allow() {
        assert_eq!(caller_timeout(&MetadataMap::new()), None);
        for bad in [
            "",
            "m",
            "10",
            "10x",
            "-5S",
            "+5S",
            "123456789S",
            "1.5S",
            "5 S",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
