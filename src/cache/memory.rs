//! The in-process tier: a moka cache bounded in bytes, in front of Redis
//! or alone. It answers without a network hop, and when Redis is down.
//! Its operations are synchronous and short, so answers are stored on the
//! request path and visible to the next request at once.

use std::time::Duration;

use bytes::Bytes;
use moka::{Expiry, ops::compute::Op, sync::Cache};
use tokio::time::Instant;

use super::CacheKey;

/// One entry of the in-process tier.
#[derive(Clone, Debug)]
pub(crate) struct LocalEntry {
    /// The encoded envelope, as Redis would hold it.
    pub(crate) entry: Bytes,
    /// How long the entry may live, from when it was stored.
    pub(crate) ttl: Duration,
    /// The hash of the payload last written to Redis for this key, and
    /// when: an identical answer is not written again before the rewrite
    /// interval.
    pub(crate) remote_write: Option<(u64, Instant)>,
}

/// Expires each entry after its own TTL (answers of different methods keep
/// for different times).
struct PerEntryTtl;

#[allow(clippy::disallowed_types)] // moka's trait signature uses std's Instant
impl Expiry<CacheKey, LocalEntry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &LocalEntry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &LocalEntry,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Entries by key, evicted by size (least recently used first) and by age.
#[derive(Clone, Debug)]
pub(crate) struct MemoryStore {
    entries: Cache<CacheKey, LocalEntry>,
}

impl MemoryStore {
    pub(crate) fn new(capacity_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &CacheKey, value: &LocalEntry| {
                u32::try_from(key.as_str().len() + value.entry.len()).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        Self { entries }
    }

    pub(crate) fn get(&self, key: &CacheKey) -> Option<LocalEntry> {
        self.entries.get(key)
    }

    pub(crate) fn put(&self, key: CacheKey, entry: LocalEntry) {
        self.entries.insert(key, entry);
    }

    pub(crate) fn remove(&self, key: &CacheKey) {
        self.entries.invalidate(key);
    }

    /// Notes that `entry` was written to Redis, if it is still the one held
    /// for `key` (a newer answer may have replaced it meanwhile).
    pub(crate) fn mark_written(&self, key: CacheKey, entry: &Bytes, written: (u64, Instant)) {
        self.entries
            .entry(key)
            .and_compute_with(|current| match current {
                Some(current) if current.value().entry == *entry => Op::Put(LocalEntry {
                    remote_write: Some(written),
                    ..current.into_value()
                }),
                _ => Op::Nop,
            });
    }
}
