//! The envelope around a stored answer: a format version, what kind of
//! answer it is and when it was stored, so that any reader, in this process
//! or in another gateway sharing the Redis, can tell its age.
//!
//! Layout: `[format: u8 = 2][kind: u8][stored at: u64 big-endian, ms since
//! the Unix epoch][payload]`. Kind 0 is a value (the payload is the
//! answer's bytes); kind 1 is a negative answer ("no such thing"), with an
//! empty payload.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

const FORMAT: u8 = 2;
const HEADER_LEN: usize = 1 + 1 + 8;

/// What the cache holds for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// An answer, as the bytes the caller gave.
    Value(Bytes),
    /// The source said there is no such thing (a negative answer, cached
    /// only when asked to).
    Negative,
}

impl Payload {
    /// The size the payload takes in an entry.
    pub fn len(&self) -> usize {
        match self {
            Payload::Value(bytes) => bytes.len(),
            Payload::Negative => 0,
        }
    }

    /// Whether it takes no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An answer found in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    /// What was stored.
    pub payload: Payload,
    /// How long ago it was stored.
    pub age: Duration,
}

/// Bytes that are not an entry this version wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// Wraps `payload` with the time `stored_at`.
pub(crate) fn encode(payload: &Payload, stored_at: SystemTime) -> Bytes {
    let millis = stored_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_u8(FORMAT);
    match payload {
        Payload::Value(bytes) => {
            buf.put_u8(0);
            buf.put_u64(millis);
            buf.put_slice(bytes);
        }
        Payload::Negative => {
            buf.put_u8(1);
            buf.put_u64(millis);
        }
    }
    buf.freeze()
}

/// Unwraps an entry, aged at `now`.
pub(crate) fn decode(stored: &Bytes, now: SystemTime) -> Result<Cached, Corrupt> {
    if stored.len() < HEADER_LEN || stored[0] != FORMAT {
        return Err(Corrupt);
    }
    let mut header = &stored[1..HEADER_LEN];
    let kind = header.get_u8();
    let stored_at = UNIX_EPOCH + Duration::from_millis(header.get_u64());
    let payload = match kind {
        0 => Payload::Value(stored.slice(HEADER_LEN..)),
        1 if stored.len() == HEADER_LEN => Payload::Negative,
        _ => return Err(Corrupt),
    };
    Ok(Cached {
        payload,
        // A clock that went backwards (or another host's clock ahead of
        // ours) gives age 0, never a negative one.
        age: now.duration_since(stored_at).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn values_round_trip_with_their_age() {
        let entry = encode(
            &Payload::Value(Bytes::from_static(b"answer")),
            at(1_700_000_000),
        );
        let cached = decode(&entry, at(1_700_000_042)).unwrap();
        assert_eq!(
            cached.payload,
            Payload::Value(Bytes::from_static(b"answer"))
        );
        assert_eq!(cached.age, Duration::from_secs(42));
    }

    #[test]
    fn negative_answers_round_trip() {
        let entry = encode(&Payload::Negative, at(1_700_000_000));
        let cached = decode(&entry, at(1_700_000_001)).unwrap();
        assert_eq!(cached.payload, Payload::Negative);
    }

    #[test]
    fn an_entry_from_the_future_has_age_zero() {
        let entry = encode(&Payload::Negative, at(1_700_000_000));
        assert_eq!(
            decode(&entry, at(1_699_999_990)).unwrap().age,
            Duration::ZERO
        );
    }

    #[test]
    fn foreign_bytes_are_corrupt() {
        let now = at(1_700_000_000);
        for stored in [
            &b""[..],
            b"\x02\x00short",
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00answer", // the previous format
            b"\x02\x07\x00\x00\x00\x00\x00\x00\x00\x00",   // an unknown kind
            b"\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00x",  // a negative with a payload
        ] {
            assert_eq!(
                decode(&Bytes::copy_from_slice(stored), now),
                Err(Corrupt),
                "{stored:?}"
            );
        }
    }
}
