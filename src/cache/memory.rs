//! The in-process store: a bounded moka cache, so the gateway works with
//! nothing installed and its memory stays within a set size.

use bytes::Bytes;
use moka::future::Cache;

use super::{CacheConfig, CacheKey};

/// Entries by key, evicted by size (least recently used first) and by age.
#[derive(Clone, Debug)]
pub(crate) struct MemoryStore {
    entries: Cache<CacheKey, Bytes>,
}

impl MemoryStore {
    pub(crate) fn new(config: &CacheConfig) -> Self {
        let entries = Cache::builder()
            .max_capacity(config.memory_capacity_bytes)
            .weigher(|key: &CacheKey, value: &Bytes| {
                u32::try_from(key.as_str().len() + value.len()).unwrap_or(u32::MAX)
            })
            .time_to_live(config.ttl)
            .build();
        Self { entries }
    }

    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Bytes> {
        self.entries.get(key).await
    }

    pub(crate) async fn put(&self, key: CacheKey, value: Bytes) {
        self.entries.insert(key, value).await;
    }
}
