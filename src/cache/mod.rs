//! The last-known-good cache: the latest successful answer of each request,
//! kept so that it can be served when the service that made it cannot
//! answer.
//!
//! It knows keys, bytes and ages, nothing of gRPC. Answers live in process
//! ([`memory`]) or in Redis ([`redis`]), inside a small envelope
//! ([`entry`]) that records when they were stored.
//!
//! A cache must never fail or slow down a request that the service can
//! answer, so [`LastKnownGood::get`] treats every store error as a miss and
//! [`LastKnownGood::put`] writes in the background.

mod entry;
mod key;
mod memory;
mod redis;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

pub use key::CacheKey;
pub use redis::{RedisOptions, check_redis_url};

/// An answer found in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedAnswer {
    /// The answer's bytes, as they were stored.
    pub bytes: Bytes,
    /// How long ago it was stored.
    pub age: Duration,
}

/// Why a cache could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL is not one this cache can use.
    #[error("{0}")]
    RedisUrl(String),
    /// fred refused the configuration.
    #[error("invalid Redis configuration: {0}")]
    Redis(#[from] ::fred::error::Error),
}

/// How the cache behaves, whatever stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an answer may still be served after it was stored.
    pub ttl: Duration,
    /// The most writes waiting for the store at once; more are dropped
    /// (and counted) rather than queued, so a slow store cannot pile up
    /// work.
    pub max_pending_writes: usize,
    /// The in-process store's size limit, in bytes of keys and answers.
    pub memory_capacity_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            max_pending_writes: 1024,
            memory_capacity_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Counts of what the cache did, since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found an answer.
    pub hits: u64,
    /// Lookups that found nothing, or could not reach the store.
    pub misses: u64,
    /// Answers written.
    pub writes: u64,
    /// Writes dropped because too many were waiting.
    pub dropped_writes: u64,
    /// Store operations that failed or timed out.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    dropped_writes: AtomicU64,
    errors: AtomicU64,
}

#[derive(Clone, Debug)]
enum Store {
    Memory(memory::MemoryStore),
    Redis(redis::RedisStore),
}

/// The cache of last-known-good answers. Cheap to clone; clones share the
/// store.
#[derive(Clone, Debug)]
pub struct LastKnownGood {
    store: Store,
    ttl: Duration,
    /// Permits for background writes; see [`CacheConfig::max_pending_writes`].
    pending_writes: Arc<Semaphore>,
    /// The number of permits `pending_writes` holds when no write waits.
    write_capacity: u32,
    counters: Arc<Counters>,
}

impl LastKnownGood {
    /// A cache held in this process, bounded by
    /// [`CacheConfig::memory_capacity_bytes`].
    pub fn in_memory(config: &CacheConfig) -> Self {
        Self::with_store(Store::Memory(memory::MemoryStore::new(config)), config)
    }

    /// A cache held in Redis at `url`: `redis://`, `rediss://` (TLS),
    /// `redis-cluster://` or `redis-sentinel://`, with an optional
    /// `user:password@`.
    ///
    /// It returns at once: the connection is made, and remade whenever it
    /// drops, in the background. Until Redis answers, lookups miss and
    /// writes are dropped, without waiting.
    pub fn redis(
        url: &str,
        options: &RedisOptions,
        config: &CacheConfig,
    ) -> Result<Self, CacheError> {
        check_redis_url(url).map_err(CacheError::RedisUrl)?;
        let store = redis::RedisStore::connect(url, options)?;
        Ok(Self::with_store(Store::Redis(store), config))
    }

    fn with_store(store: Store, config: &CacheConfig) -> Self {
        let write_capacity =
            u32::try_from(config.max_pending_writes.clamp(1, Semaphore::MAX_PERMITS))
                .unwrap_or(u32::MAX);
        Self {
            store,
            ttl: config.ttl,
            pending_writes: Arc::new(Semaphore::new(write_capacity as usize)),
            write_capacity,
            counters: Arc::default(),
        }
    }

    /// `memory` or `redis`.
    pub fn store_name(&self) -> &'static str {
        match self.store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// The answer stored under `key`, if one is younger than the TTL.
    ///
    /// Never fails: an unreachable store, a timeout or an unreadable entry
    /// is a miss.
    pub async fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        let span = self.span("cache.get", "GET");
        let found = async {
            let stored = match &self.store {
                Store::Memory(store) => Ok(store.get(key).await),
                Store::Redis(store) => store.get(key).await,
            };
            let stored = stored.unwrap_or_else(|error| {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, "cache lookup failed; treated as a miss");
                None
            })?;
            let Some(answer) = entry::decode(&stored) else {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    bytes = stored.len(),
                    "unreadable cache entry; treated as a miss"
                );
                return None;
            };
            (answer.age <= self.ttl).then_some(answer)
        }
        .instrument(span.clone())
        .await;

        let (counter, result) = match &found {
            Some(_) => (&self.counters.hits, "hit"),
            None => (&self.counters.misses, "miss"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        span.record("cache.result", result);
        found
    }

    /// Stores `answer` under `key` in the background, replacing what was
    /// there, for the TTL.
    ///
    /// Returns at once. If too many writes are already waiting, this one is
    /// dropped and counted: a newer answer will come with the next success.
    pub fn put(&self, key: CacheKey, answer: Bytes) {
        let Ok(permit) = Arc::clone(&self.pending_writes).try_acquire_owned() else {
            self.counters.dropped_writes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("too many cache writes pending; this one is dropped");
            return;
        };
        let span = self.span("cache.set", "SET");
        let cache = self.clone();
        tokio::spawn(
            async move {
                let stored = entry::encode(&answer);
                let result = match &cache.store {
                    Store::Memory(store) => {
                        store.put(key, stored).await;
                        Ok(())
                    }
                    Store::Redis(store) => store.put(&key, stored, cache.ttl).await,
                };
                match result {
                    Ok(()) => {
                        cache.counters.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        cache.counters.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%error, "cache write failed");
                    }
                }
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// What the cache has done since start.
    pub fn stats(&self) -> CacheStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&self.counters.hits),
            misses: read(&self.counters.misses),
            writes: read(&self.counters.writes),
            dropped_writes: read(&self.counters.dropped_writes),
            errors: read(&self.counters.errors),
        }
    }

    /// Waits until the writes started so far have finished (or failed).
    pub async fn flush(&self) {
        if let Ok(all) = self.pending_writes.acquire_many(self.write_capacity).await {
            drop(all);
        }
    }

    /// Closes the connection to the store, if any.
    pub async fn close(&self) {
        if let Store::Redis(store) = &self.store {
            store.close().await;
        }
    }

    fn span(&self, name: &'static str, operation: &'static str) -> tracing::Span {
        // Keys are hashes of requests, but even so they are left out: a
        // span needs the operation, not the data.
        match self.store {
            Store::Redis(_) => tracing::info_span!(
                "cache",
                otel.name = name,
                otel.kind = "client",
                db.system.name = "redis",
                db.operation.name = operation,
                cache.result = tracing::field::Empty,
            ),
            Store::Memory(_) => tracing::info_span!(
                "cache",
                otel.name = name,
                otel.kind = "internal",
                cache.store = "memory",
                cache.result = tracing::field::Empty,
            ),
        }
    }
}
