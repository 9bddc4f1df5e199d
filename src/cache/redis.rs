//! The Redis tier, through fred: a small pool of connections that reconnect
//! on their own, short timeouts, reads that fail at once while
//! disconnected, and a circuit breaker of its own, so that a Redis that is
//! dead or hung costs a request nothing.
//!
//! Single nodes, Redis Cluster and Sentinel, with TLS and AUTH, are all
//! fred's; this module chooses the settings.

use std::{path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use fred::{
    error::{Error, ErrorKind},
    prelude::{
        Builder, ClientLike as _, Config, Expiration, KeysInterface as _, Options, Pool,
        ReconnectPolicy, TcpConfig,
    },
    types::config::{TlsConfig, UnresponsiveConfig},
};

use super::{CacheError, CacheKey};
use crate::breaker::{BreakerConfig, Circuit, Outcome};

/// How the gateway talks to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// The longest a lookup may take; past it, it is a miss.
    pub command_timeout: Duration,
    /// The longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// The number of connections, used in turn.
    pub pool_size: usize,
    /// The ACL user, over the URL's.
    pub username: Option<String>,
    /// The password, over the URL's (so that it need not be in a URL that
    /// shows in process listings).
    pub password: Option<String>,
    /// For `rediss://`: the PEM file of the certificate authorities to
    /// trust, instead of the system's.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            pool_size: 2,
            username: None,
            password: None,
            tls_ca_file: None,
        }
    }
}

const SCHEMES: [&str; 6] = [
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
];

/// Checks that `url` is a Redis URL this cache can use: a single node
/// (`redis://[user:password@]host[:port][/db]`), a cluster
/// (`redis-cluster://host:port?node=host:port...`) or a Sentinel
/// deployment (`redis-sentinel://host:port?sentinelServiceName=name`),
/// each with `rediss` for TLS.
pub fn check_redis_url(url: &str) -> Result<(), String> {
    let expected = "expected redis://[user:password@]host:port[/db], rediss://..., \
                    redis-cluster://host:port[?node=host:port], or \
                    redis-sentinel://host:port?sentinelServiceName=name";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("no scheme; {expected}"));
    };
    if !SCHEMES.contains(&scheme) {
        return Err(format!("scheme {scheme:?} is not supported; {expected}"));
    }
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if host.is_empty() || host.starts_with([':', '/', '?']) {
        return Err(format!("no host; {expected}"));
    }
    Config::from_url(url)
        .map(drop)
        .map_err(|error| format!("{error}; {expected}"))
}

/// Why a Redis command gave no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisError {
    /// The Redis circuit is open: the command was not sent.
    #[error("skipped: Redis failed too often recently")]
    Skipped,
    /// fred's error: disconnected, timed out, refused.
    #[error(transparent)]
    Fred(#[from] Error),
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
    /// Skips Redis while it keeps failing. A dead Redis already fails fast;
    /// a hung one (accepting, never answering) would cost every lookup its
    /// whole timeout without this.
    circuit: &'static Circuit,
}

impl RedisStore {
    /// Parses `url` (checked with [`check_redis_url`]) and starts
    /// connecting in the background.
    pub(crate) fn connect(url: &str, options: &RedisOptions) -> Result<Self, CacheError> {
        check_redis_url(url).map_err(CacheError::RedisUrl)?;
        let mut config = Config::from_url(url)?;
        // Retry the first connection like any other instead of failing:
        // the gateway must start, and serve, while Redis is down.
        config.fail_fast = false;
        if options.username.is_some() {
            config.username.clone_from(&options.username);
        }
        if options.password.is_some() {
            config.password.clone_from(&options.password);
        }
        if let Some(ca_file) = &options.tls_ca_file {
            if config.tls.is_none() {
                return Err(CacheError::RedisUrl(
                    "a CA file is only for rediss:// URLs".into(),
                ));
            }
            config.tls = Some(tls_trusting(ca_file)?);
        }

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
            circuit: Circuit::new(
                "redis",
                BreakerConfig {
                    volume_threshold: 5,
                    reset_timeout: Duration::from_secs(1),
                    window: Duration::from_secs(10),
                    ..BreakerConfig::default()
                },
            ),
        })
    }

    /// Waits until every connection of the pool is up, for at most
    /// `timeout`; whether they are.
    pub(crate) async fn wait_until_connected(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.pool.wait_for_connect()).await,
            Ok(Ok(()))
        )
    }

    /// The circuit that guards Redis.
    pub(crate) fn circuit(&self) -> &'static Circuit {
        self.circuit
    }

    pub(crate) async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, RedisError> {
        self.guarded(
            self.pool
                .with_options(&self.read)
                .get::<Option<Bytes>, _>(key.as_str()),
        )
        .await
    }

    pub(crate) async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        self.guarded(self.pool.with_options(&self.write).set::<(), _, _>(
            key.as_str(),
            value,
            Some(Expiration::PX(ttl_ms)),
            None,
            false,
        ))
        .await
    }

    pub(crate) async fn remove(&self, key: &CacheKey) -> Result<(), RedisError> {
        self.guarded(
            self.pool
                .with_options(&self.write)
                .del::<(), _>(key.as_str()),
        )
        .await
    }

    pub(crate) async fn close(&self) {
        if let Err(error) = self.pool.quit().await {
            tracing::debug!(%error, "closing the Redis connections");
        }
    }

    /// Runs a command through the Redis circuit.
    async fn guarded<T>(
        &self,
        command: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, RedisError> {
        let permit = self
            .circuit
            .try_acquire()
            .map_err(|_| RedisError::Skipped)?;
        let result = command.await;
        permit.record(match &result {
            Ok(_) => Outcome::Success,
            Err(error) if *error.kind() == ErrorKind::Timeout => Outcome::Timeout,
            Err(_) => Outcome::Failure,
        });
        Ok(result?)
    }
}

/// A rustls set-up that trusts the certificate authorities in `ca_file`.
fn tls_trusting(ca_file: &PathBuf) -> Result<TlsConfig, CacheError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    let invalid = |why: String| CacheError::RedisUrl(format!("{}: {why}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file).map_err(|e| invalid(e.to_string()))? {
        roots
            .add(certificate.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificate in the file".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConfig::from(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_single_node_cluster_and_sentinel_urls() {
        for url in [
            "redis://cache",
            "redis://cache:6380",
            "redis://cache:6380/2",
            "redis://user:secret@cache:6379",
            "redis://:secret@127.0.0.1:6379",
            "rediss://cache:6380",
            "redis-cluster://cache-1:7000?node=cache-2:7001&node=cache-3:7002",
            "redis-sentinel://sentinel:26379?sentinelServiceName=primary",
        ] {
            assert_eq!(check_redis_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_use_and_says_why() {
        for (url, why) in [
            ("foo", "no scheme"),
            ("cache:6379", "no scheme"),
            ("nope://cache", "\"nope\" is not supported"),
            ("redis://", "no host"),
            ("redis://:6379", "no host"),
            ("redis://cache:notaport", "expected redis://"),
            ("redis-sentinel://sentinel:26379", "expected redis://"),
        ] {
            let error = check_redis_url(url).expect_err(url);
            assert!(error.contains(why), "{url}: {error}");
        }
    }
}
