//! The envelope around a stored answer: a format version and the time it
//! was stored, so that any reader, in this process or in another gateway
//! sharing the Redis, can tell the answer's age.
//!
//! Layout: `[version: u8 = 1][stored at: u64 big-endian, ms since the Unix
//! epoch][answer bytes]`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

use super::CachedAnswer;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8;

/// Wraps `answer` with the current time.
pub(crate) fn encode(answer: &[u8]) -> Bytes {
    encode_at(answer, SystemTime::now())
}

fn encode_at(answer: &[u8], stored_at: SystemTime) -> Bytes {
    let millis = stored_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut buf = BytesMut::with_capacity(HEADER_LEN + answer.len());
    buf.put_u8(VERSION);
    buf.put_u64(millis);
    buf.put_slice(answer);
    buf.freeze()
}

/// Unwraps an entry; `None` if it is not one this version wrote.
pub(crate) fn decode(stored: &Bytes) -> Option<CachedAnswer> {
    decode_at(stored, SystemTime::now())
}

fn decode_at(stored: &Bytes, now: SystemTime) -> Option<CachedAnswer> {
    if stored.len() < HEADER_LEN || stored[0] != VERSION {
        return None;
    }
    let mut header = &stored[1..HEADER_LEN];
    let stored_at = UNIX_EPOCH + Duration::from_millis(header.get_u64());
    Some(CachedAnswer {
        bytes: stored.slice(HEADER_LEN..),
        // A clock that went backwards (or another host's clock ahead of
        // ours) gives age 0, never a negative one.
        age: now.duration_since(stored_at).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_its_age() {
        let stored_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let entry = encode_at(b"answer", stored_at);
        let answer = decode_at(&entry, stored_at + Duration::from_secs(42)).unwrap();
        assert_eq!(&answer.bytes[..], b"answer");
        assert_eq!(answer.age, Duration::from_secs(42));
    }

    #[test]
    fn an_entry_from_the_future_has_age_zero() {
        let stored_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let entry = encode_at(b"", stored_at);
        let answer = decode_at(&entry, stored_at - Duration::from_secs(5)).unwrap();
        assert_eq!(answer.age, Duration::ZERO);
    }

    #[test]
    fn foreign_bytes_are_not_an_entry() {
        assert_eq!(decode(&Bytes::from_static(b"")), None);
        assert_eq!(decode(&Bytes::from_static(b"\x01short")), None);
        assert_eq!(decode(&Bytes::from_static(b"\x02123456789answer")), None);
    }
}
