//! The last-known-good cache: the latest answer to each request, kept so
//! that it can be served fresh (without asking the source) or stale (when
//! the source cannot answer).
//!
//! It knows keys, bytes, ages and TTLs, nothing of gRPC. Two tiers:
//!
//! * [`memory`]: in process, bounded in bytes; always there, so a stale
//!   answer is still at hand when Redis is down;
//! * [`redis`]: shared by every gateway replica, through fred, behind a
//!   circuit of its own.
//!
//! Entries are enveloped ([`entry`]) with when they were stored, so every
//! reader can tell their age, and keyed ([`key`]) by namespace, schema
//! version, method and a hash of the request.
//!
//! A cache must never fail or slow down a request that the source can
//! answer: [`LastKnownGood::get`] treats every store error as a miss, and
//! [`LastKnownGood::put`] writes in the background, dropping writes rather
//! than queueing them when too many are pending, and skipping the rewrite
//! of an answer identical to one written recently.

mod entry;
mod key;
mod memory;
mod redis;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, SystemTime},
};

use tokio::{sync::Semaphore, time::Instant};
use tracing::Instrument as _;

pub use entry::{Cached, Payload};
pub use key::{CacheKey, KeySpace};
pub use redis::{RedisOptions, check_redis_url};

use crate::breaker::Circuit;
use memory::{LocalEntry, MemoryStore};

/// Why a cache could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL or a Redis option is not one this cache can use.
    #[error("{0}")]
    RedisUrl(String),
    /// fred refused the configuration.
    #[error("invalid Redis configuration: {0}")]
    Redis(#[from] ::fred::error::Error),
}

/// How the cache behaves, whatever stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Where keys live: namespace and schema version.
    pub keys: KeySpace,
    /// The in-process tier's size limit, in bytes of keys and entries.
    pub memory_capacity_bytes: u64,
    /// Answers larger than this are not cached.
    pub max_entry_bytes: usize,
    /// The most Redis writes waiting at once; more are dropped (and
    /// counted) rather than queued, so a slow Redis cannot pile up work.
    pub max_pending_writes: usize,
    /// An answer identical to the one last written to Redis for its key is
    /// not written again before this long. The Redis entry then looks older
    /// than it is by at most this much, to the other replicas.
    pub rewrite_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            keys: KeySpace::new("cache", "v1"),
            memory_capacity_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            max_pending_writes: 1024,
            rewrite_interval: Duration::from_secs(5),
        }
    }
}

/// What the cache has done since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered by the in-process tier.
    pub local_hits: u64,
    /// Lookups answered by Redis.
    pub redis_hits: u64,
    /// Lookups that found nothing young enough.
    pub misses: u64,
    /// Answers written to Redis.
    pub writes: u64,
    /// Answers not written to Redis: identical to one written recently.
    pub skipped_writes: u64,
    /// Answers not written to Redis: too many writes pending.
    pub dropped_writes: u64,
    /// Answers not cached: larger than the entry limit.
    pub oversized: u64,
    /// Entries that did not decode; each is deleted.
    pub decode_failures: u64,
    /// Redis commands that failed or timed out.
    pub redis_errors: u64,
    /// Redis commands not sent because the Redis circuit was open.
    pub redis_skipped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    local_hits: AtomicU64,
    redis_hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    skipped_writes: AtomicU64,
    dropped_writes: AtomicU64,
    oversized: AtomicU64,
    decode_failures: AtomicU64,
    redis_errors: AtomicU64,
    redis_skipped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// The cache of last-known-good answers. Cheap to clone; clones share the
/// tiers.
#[derive(Clone, Debug)]
pub struct LastKnownGood {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CacheConfig,
    /// The cache's clock: the wall time at start, moved on by tokio's
    /// monotonic clock. Ages read against other replicas' entries as wall
    /// time does, a wall clock stepped back or forth does not make answers
    /// younger or older, and tests that pause tokio's clock control ages.
    clock: (SystemTime, Instant),
    local: MemoryStore,
    remote: Option<redis::RedisStore>,
    /// Permits for Redis writes; see [`CacheConfig::max_pending_writes`].
    pending_writes: Arc<Semaphore>,
    /// The number of permits `pending_writes` holds when no write waits.
    write_capacity: u32,
    counters: Counters,
}

impl LastKnownGood {
    /// A cache held in this process only.
    pub fn in_memory(config: &CacheConfig) -> Self {
        Self::with_remote(None, config)
    }

    /// A cache held in this process and in Redis at `url` (see
    /// [`check_redis_url`]).
    ///
    /// It returns at once: the connection is made, and remade whenever it
    /// drops, in the background. Until Redis answers, the in-process tier
    /// answers alone.
    pub fn redis(
        url: &str,
        options: &RedisOptions,
        config: &CacheConfig,
    ) -> Result<Self, CacheError> {
        let remote = redis::RedisStore::connect(url, options)?;
        Ok(Self::with_remote(Some(remote), config))
    }

    fn with_remote(remote: Option<redis::RedisStore>, config: &CacheConfig) -> Self {
        let write_capacity =
            u32::try_from(config.max_pending_writes.clamp(1, Semaphore::MAX_PERMITS))
                .unwrap_or(u32::MAX);
        Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                clock: (whole_millis(SystemTime::now()), Instant::now()),
                local: MemoryStore::new(config.memory_capacity_bytes),
                remote,
                pending_writes: Arc::new(Semaphore::new(write_capacity as usize)),
                write_capacity,
                counters: Counters::default(),
            }),
        }
    }

    /// Where its keys live.
    pub fn keys(&self) -> &KeySpace {
        &self.inner.config.keys
    }

    /// `memory`, or `memory+redis`.
    pub fn store_name(&self) -> &'static str {
        match self.inner.remote {
            Some(_) => "memory+redis",
            None => "memory",
        }
    }

    /// Waits, for at most `timeout`, until Redis is connected; whether it
    /// is (always `true` without Redis). Lookups fail at once while Redis
    /// is disconnected, so a process that has just started waits here
    /// briefly before serving, or its first lookups would miss.
    pub async fn wait_until_connected(&self, timeout: Duration) -> bool {
        match &self.inner.remote {
            Some(remote) => remote.wait_until_connected(timeout).await,
            None => true,
        }
    }

    /// The circuit that guards Redis, if there is a Redis.
    pub fn redis_circuit(&self) -> Option<&'static Circuit> {
        self.inner.remote.as_ref().map(|remote| remote.circuit())
    }

    /// The entry stored under `key`, if one is younger than `max_age`: from
    /// the in-process tier, or else from Redis (and then kept in process).
    ///
    /// Never fails: an unreachable Redis, a timeout or an entry that does
    /// not decode is a miss; an entry that does not decode is deleted.
    pub async fn get(&self, key: &CacheKey, max_age: Duration) -> Option<Cached> {
        let span = tracing::info_span!(
            "cache.get",
            otel.kind = "internal",
            cache.tier = tracing::field::Empty,
        );
        let found = self.lookup(key, max_age).instrument(span.clone()).await;
        span.record(
            "cache.tier",
            match &found {
                Some((_, tier)) => *tier,
                None => "miss",
            },
        );
        found.map(|(cached, _)| cached)
    }

    async fn lookup(&self, key: &CacheKey, max_age: Duration) -> Option<(Cached, &'static str)> {
        let inner = &*self.inner;
        let now = inner.now();
        if let Some(local) = inner.local.get(key) {
            match entry::decode(&local.entry, now) {
                Ok(cached) if cached.age < max_age => {
                    bump(&inner.counters.local_hits);
                    return Some((cached, "memory"));
                }
                Ok(_) => {}
                Err(entry::Corrupt) => self.discard(key).await,
            }
        }
        let Some(remote) = &inner.remote else {
            bump(&inner.counters.misses);
            return None;
        };
        let stored = match remote.get(key).instrument(redis_span("GET")).await {
            Ok(stored) => stored,
            Err(error) => {
                self.count_redis_error(&error);
                None
            }
        };
        let Some(stored) = stored else {
            bump(&inner.counters.misses);
            return None;
        };
        match entry::decode(&stored, now) {
            Ok(cached) if cached.age < max_age => {
                bump(&inner.counters.redis_hits);
                // Kept in process for what is left of its life. It is in
                // Redis already: no need to write it back soon.
                let hash = payload_hash(&cached.payload);
                inner.local.put(
                    key.clone(),
                    LocalEntry {
                        entry: stored,
                        ttl: max_age - cached.age,
                        remote_write: Some((hash, Instant::now())),
                    },
                );
                Some((cached, "redis"))
            }
            Ok(_) => {
                bump(&inner.counters.misses);
                None
            }
            Err(entry::Corrupt) => {
                self.discard(key).await;
                bump(&inner.counters.misses);
                None
            }
        }
    }

    /// Deletes an entry that does not decode, from both tiers, and counts
    /// it. For an envelope that does not decode, the cache does it itself;
    /// a caller whose payload does not decode calls it.
    pub async fn discard(&self, key: &CacheKey) {
        let inner = &*self.inner;
        bump(&inner.counters.decode_failures);
        tracing::warn!("a cache entry does not decode; deleted");
        inner.local.remove(key);
        if let Some(remote) = &inner.remote
            && let Err(error) = remote.remove(key).instrument(redis_span("DEL")).await
        {
            self.count_redis_error(&error);
        }
    }

    /// Stores `payload` under `key` for `ttl`: at once in process, then in
    /// Redis in the background, unless an identical payload was written
    /// there less than the rewrite interval ago. Returns at once.
    ///
    /// Payloads over the entry limit are not stored. If too many Redis
    /// writes are pending, this one is dropped (and counted): a newer
    /// answer will come with the next success.
    pub fn put(&self, key: CacheKey, payload: Payload, ttl: Duration) {
        let inner = &*self.inner;
        if payload.len() > inner.config.max_entry_bytes {
            bump(&inner.counters.oversized);
            tracing::debug!(bytes = payload.len(), "answer too large to cache");
            return;
        }
        let span = tracing::info_span!("cache.set", otel.kind = "internal");
        let _entered = span.enter();
        let entry = entry::encode(&payload, inner.now());
        let hash = payload_hash(&payload);
        let recently_written = inner
            .local
            .get(&key)
            .and_then(|local| local.remote_write)
            .filter(|(written, at)| {
                *written == hash && at.elapsed() < inner.config.rewrite_interval
            });
        inner.local.put(
            key.clone(),
            LocalEntry {
                entry: entry.clone(),
                ttl,
                remote_write: recently_written,
            },
        );

        if inner.remote.is_none() {
            return;
        }
        if recently_written.is_some() {
            bump(&inner.counters.skipped_writes);
            return;
        }
        let Ok(permit) = Arc::clone(&inner.pending_writes).try_acquire_owned() else {
            bump(&inner.counters.dropped_writes);
            tracing::debug!("too many Redis writes pending; this one is dropped");
            return;
        };
        let cache = self.clone();
        tokio::spawn(
            async move {
                let inner = &*cache.inner;
                let Some(remote) = &inner.remote else { return };
                match remote
                    .put(&key, entry.clone(), ttl)
                    .instrument(redis_span("SET"))
                    .await
                {
                    Ok(()) => {
                        bump(&inner.counters.writes);
                        inner
                            .local
                            .mark_written(key, &entry, (hash, Instant::now()));
                    }
                    Err(error) => cache.count_redis_error(&error),
                }
                drop(permit);
            }
            .instrument(span.clone()),
        );
    }

    fn count_redis_error(&self, error: &redis::RedisError) {
        match error {
            redis::RedisError::Skipped => bump(&self.inner.counters.redis_skipped),
            redis::RedisError::Fred(error) => {
                bump(&self.inner.counters.redis_errors);
                tracing::debug!(%error, "Redis command failed");
            }
        }
    }

    /// What the cache has done since start.
    pub fn stats(&self) -> CacheStats {
        let counters = &self.inner.counters;
        let read = |counter: &AtomicU64| counter.load(Relaxed);
        CacheStats {
            local_hits: read(&counters.local_hits),
            redis_hits: read(&counters.redis_hits),
            misses: read(&counters.misses),
            writes: read(&counters.writes),
            skipped_writes: read(&counters.skipped_writes),
            dropped_writes: read(&counters.dropped_writes),
            oversized: read(&counters.oversized),
            decode_failures: read(&counters.decode_failures),
            redis_errors: read(&counters.redis_errors),
            redis_skipped: read(&counters.redis_skipped),
        }
    }

    /// Waits until the Redis writes started so far have finished (or
    /// failed).
    pub async fn flush(&self) {
        if let Ok(all) = self
            .inner
            .pending_writes
            .acquire_many(self.inner.write_capacity)
            .await
        {
            drop(all);
        }
    }

    /// Closes the connection to Redis, if any.
    pub async fn close(&self) {
        if let Some(remote) = &self.inner.remote {
            remote.close().await;
        }
    }
}

/// `time`, cut to the millisecond that entries record: ages then come out
/// exact when the cache's clock moves by whole milliseconds.
fn whole_millis(time: SystemTime) -> SystemTime {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    std::time::UNIX_EPOCH + Duration::from_millis(since_epoch.as_millis() as u64)
}

impl Inner {
    fn now(&self) -> SystemTime {
        let (wall, monotonic) = self.clock;
        wall + monotonic.elapsed()
    }
}

/// The hash that tells an answer from a different one, for the rewrite
/// throttle.
fn payload_hash(payload: &Payload) -> u64 {
    match payload {
        Payload::Value(bytes) => xxhash_rust::xxh3::xxh3_64(bytes),
        Payload::Negative => 0,
    }
}

/// The span of one Redis command. The key is left out: even hashed, it
/// tells nothing the span needs.
fn redis_span(operation: &'static str) -> tracing::Span {
    tracing::info_span!(
        "redis",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = operation,
    )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn cache(config: CacheConfig) -> LastKnownGood {
        LastKnownGood::in_memory(&config)
    }

    fn key(cache: &LastKnownGood, n: u8) -> CacheKey {
        cache.keys().key("/m", &[n])
    }

    #[tokio::test]
    async fn an_answer_is_found_while_young_enough() {
        let cache = cache(CacheConfig::default());
        let key = key(&cache, 1);
        cache.put(
            key.clone(),
            Payload::Value(Bytes::from_static(b"a")),
            Duration::from_secs(60),
        );
        cache.flush().await;
        let found = cache.get(&key, Duration::from_secs(60)).await.unwrap();
        assert_eq!(found.payload, Payload::Value(Bytes::from_static(b"a")));
        assert!(found.age < Duration::from_secs(1));
        // Asked with a smaller max age than its own, it still qualifies
        // while younger than that.
        assert!(cache.get(&key, Duration::from_secs(1)).await.is_some());
        assert_eq!(cache.stats().local_hits, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_ages_with_tokio_time() {
        let cache = cache(CacheConfig::default());
        let key = key(&cache, 2);
        cache.put(
            key.clone(),
            Payload::Value(Bytes::from_static(b"a")),
            Duration::from_secs(60),
        );
        tokio::time::advance(Duration::from_secs(10) - Duration::from_millis(1)).await;
        let found = cache
            .get(&key, Duration::from_secs(10))
            .await
            .expect("younger than 10s");
        assert_eq!(found.age, Duration::from_millis(9_999));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            cache.get(&key, Duration::from_secs(10)).await.is_none(),
            "10s old is past a 10s window"
        );
        assert!(cache.get(&key, Duration::from_secs(11)).await.is_some());
    }

    #[tokio::test]
    async fn an_oversized_answer_is_not_cached() {
        let cache = cache(CacheConfig {
            max_entry_bytes: 4,
            ..CacheConfig::default()
        });
        let key = key(&cache, 1);
        cache.put(
            key.clone(),
            Payload::Value(Bytes::from_static(b"12345")),
            Duration::from_secs(60),
        );
        cache.flush().await;
        assert!(cache.get(&key, Duration::from_secs(60)).await.is_none());
        assert_eq!(cache.stats().oversized, 1);
    }

    #[tokio::test]
    async fn negative_answers_are_kept_apart_from_values() {
        let cache = cache(CacheConfig::default());
        let key = key(&cache, 9);
        cache.put(key.clone(), Payload::Negative, Duration::from_secs(5));
        cache.flush().await;
        assert_eq!(
            cache
                .get(&key, Duration::from_secs(5))
                .await
                .unwrap()
                .payload,
            Payload::Negative
        );
    }
}
