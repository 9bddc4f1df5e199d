//! The Redis store, through fred: a small pool of connections that
//! reconnect on their own, with short timeouts and commands that fail at
//! once while disconnected, so a slow or dead Redis costs a request at most
//! one short timeout and usually nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use fred::{
    error::Error,
    prelude::{
        Builder, ClientLike as _, Config, Expiration, KeysInterface as _, Options, Pool,
        ReconnectPolicy, TcpConfig,
    },
    types::config::UnresponsiveConfig,
};

use super::CacheKey;

/// How the gateway talks to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// The longest a command may take; past it, the lookup is a miss and
    /// the write is dropped.
    pub command_timeout: Duration,
    /// The longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// The number of connections, used in turn.
    pub pool_size: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            pool_size: 2,
        }
    }
}

/// Checks that `url` is a Redis URL this cache can use:
/// `redis://[user:password@]host[:port][/db]`. TLS (`rediss://`), Cluster
/// and Sentinel URLs are refused until they are supported.
pub fn check_redis_url(url: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected redis://[user:password@]host:port[/db]";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("no scheme; {EXPECTED}"));
    };
    if scheme != "redis" {
        return Err(format!(
            "scheme {scheme:?} is not supported (TLS, Cluster and Sentinel are not yet); {EXPECTED}"
        ));
    }
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if host.is_empty() || host.starts_with([':', '/']) {
        return Err(format!("no host; {EXPECTED}"));
    }
    Config::from_url(url)
        .map(drop)
        .map_err(|error| format!("{error}; {EXPECTED}"))
}

#[derive(Clone, Debug)]
pub(crate) struct RedisStore {
    pool: Pool,
    /// Options of lookups, which are on the request path: fail at once
    /// while disconnected, one attempt, a short timeout.
    read: Options,
    /// Options of writes, which are off the request path: they may wait for
    /// a reconnection, within a longer timeout, so that an answer made
    /// while the connection blinks is still stored.
    write: Options,
    /// Whether the last command worked; a change is logged once, rather
    /// than every failed command while Redis is down.
    reachable: Arc<AtomicBool>,
}

impl RedisStore {
    /// Parses `url` (checked with [`check_redis_url`]) and starts
    /// connecting in the background.
    pub(crate) fn connect(url: &str, options: &RedisOptions) -> Result<Self, Error> {
        let mut config = Config::from_url(url)?;
        // Retry the first connection like any other instead of failing:
        // the gateway must start, and serve, while Redis is down.
        config.fail_fast = false;

        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|connection| {
                connection.connection_timeout = options.connect_timeout;
                connection.internal_command_timeout = options.connect_timeout;
                connection.max_command_attempts = 1;
                connection.tcp = TcpConfig {
                    nodelay: Some(true),
                    ..TcpConfig::default()
                };
                // A Redis that accepts but never answers (hung, or behind a
                // dead link) is dropped and reconnected.
                connection.unresponsive = UnresponsiveConfig {
                    max_timeout: Some(options.connect_timeout * 2),
                    interval: options.connect_timeout / 2,
                };
            })
            .with_performance_config(|performance| {
                performance.default_command_timeout = options.command_timeout;
            })
            // fred does not reconnect unless told to. Retry forever, from
            // 100ms up to every 2s.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        let pool = builder.build_pool(options.pool_size.max(1))?;
        // The handle is not awaited: connecting happens in the background,
        // for as long as the process runs.
        let _connection = pool.connect();

        Ok(Self {
            pool,
            read: Options {
                fail_fast: true,
                max_attempts: Some(1),
                timeout: Some(options.command_timeout),
                ..Options::default()
            },
            write: Options {
                fail_fast: false,
                max_attempts: Some(1),
                timeout: Some(options.command_timeout.max(options.connect_timeout)),
                ..Options::default()
            },
            reachable: Arc::new(AtomicBool::new(true)),
        })
    }

    pub(crate) async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, Error> {
        let result = self
            .pool
            .with_options(&self.read)
            .get::<Option<Bytes>, _>(key.as_str())
            .await;
        self.observe(result)
    }

    pub(crate) async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), Error> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        let result = self
            .pool
            .with_options(&self.write)
            .set::<(), _, _>(
                key.as_str(),
                value,
                Some(Expiration::PX(ttl_ms)),
                None,
                false,
            )
            .await;
        self.observe(result)
    }

    pub(crate) async fn close(&self) {
        if let Err(error) = self.pool.quit().await {
            tracing::debug!(%error, "closing the Redis connections");
        }
    }

    fn observe<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        let reachable = result.is_ok();
        if self.reachable.swap(reachable, Ordering::Relaxed) != reachable {
            match &result {
                Ok(_) => tracing::info!("Redis answers again; the cache is back"),
                Err(error) => tracing::warn!(
                    %error,
                    "Redis does not answer; the cache misses until it is back"
                ),
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_single_node_urls_with_or_without_credentials() {
        for url in [
            "redis://cache",
            "redis://cache:6380",
            "redis://cache:6380/2",
            "redis://user:secret@cache:6379",
            "redis://:secret@127.0.0.1:6379",
        ] {
            assert_eq!(check_redis_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_use_and_says_why() {
        for (url, why) in [
            ("foo", "no scheme"),
            ("cache:6379", "no scheme"),
            ("rediss://cache:6379", "\"rediss\" is not supported"),
            (
                "redis-cluster://cache:6379",
                "\"redis-cluster\" is not supported",
            ),
            ("nope://cache", "\"nope\" is not supported"),
            ("redis://", "no host"),
            ("redis://:6379", "no host"),
            ("redis://cache:notaport", "expected redis://"),
        ] {
            let error = check_redis_url(url).expect_err(url);
            assert!(error.contains(why), "{url}: {error}");
        }
    }
}
