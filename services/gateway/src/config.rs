//! The gateway's settings: flags, each also read from an environment
//! variable, checked once at start-up so a bad value stops the process with
//! a message that names the flag.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use http::Uri;
use resilient_catalog::{
    breaker::{BreakerConfig, GrpcFailureCodes, InvalidBreakerConfig},
    cache::{CacheConfig, KeySpace, RedisOptions},
};

/// The gateway's settings. The binary's `--help` shows them.
#[derive(Clone, Debug, Parser)]
#[command(name = "gateway")]
pub struct Config {
    /// Address (IP and port) of the public gRPC listener: catalog, health,
    /// reflection.
    #[arg(
        long,
        value_name = "ADDR",
        env = "GATEWAY_LISTEN",
        default_value = "0.0.0.0:50051"
    )]
    pub listen: SocketAddr,

    /// Address (IP and port) of the admin gRPC listener: CircuitAdminService,
    /// health, reflection. Keep it private: loopback by default.
    #[arg(
        long,
        value_name = "ADDR",
        env = "GATEWAY_ADMIN_LISTEN",
        default_value = "127.0.0.1:50053"
    )]
    pub admin_listen: SocketAddr,

    /// The backend to call, as an `http://host:port` URL.
    #[arg(long, value_name = "URL", env = "GATEWAY_BACKEND_URL", default_value = "http://127.0.0.1:50052", value_parser = parse_backend_url)]
    pub backend_url: Uri,

    /// Redis for the last-known-good cache, as
    /// `redis://[user:password@]host:port[/db]`. Unset: an in-process cache,
    /// so the gateway runs with nothing installed.
    #[arg(long, value_name = "URL", env = "GATEWAY_REDIS_URL", value_parser = parse_redis_url)]
    pub redis_url: Option<String>,

    /// The longest a Redis command may take before the lookup counts as a
    /// miss, in milliseconds.
    #[arg(long, value_name = "MS", env = "GATEWAY_REDIS_TIMEOUT_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,

    /// The gateway's budget for one backend call, in milliseconds. A caller
    /// with a shorter deadline gets its own deadline passed on instead. A
    /// call that runs out of this budget counts as a failure.
    #[arg(long, value_name = "MS", env = "GATEWAY_TIMEOUT_MS", default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,

    /// How much of a caller's deadline is kept for the fallback, in
    /// milliseconds (at most half of the deadline). A caller whose deadline
    /// comes first stops waiting for the backend this long before it, and
    /// gets the last known good answer instead of DEADLINE_EXCEEDED; with
    /// nothing cached it waits on. 0 waits for the backend to the end.
    #[arg(long, value_name = "MS", env = "GATEWAY_FALLBACK_RESERVE_MS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub fallback_reserve_ms: u64,

    /// The circuit opens when failures reach this percentage of the calls
    /// in the rolling window (1 to 100).
    #[arg(long, value_name = "PERCENT", env = "GATEWAY_ERROR_THRESHOLD_PERCENTAGE", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub error_threshold_percentage: u8,

    /// How long an open circuit rejects calls before it lets a trial call
    /// through, in milliseconds.
    #[arg(long, value_name = "MS", env = "GATEWAY_RESET_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub reset_timeout_ms: u64,

    /// The fewest calls the rolling window must hold before its failure
    /// rate can open the circuit; 0 lets a single failure open it.
    #[arg(
        long,
        value_name = "CALLS",
        env = "GATEWAY_VOLUME_THRESHOLD",
        default_value_t = 5
    )]
    pub volume_threshold: u32,

    /// The length of the rolling window that failures are counted over, in
    /// milliseconds.
    #[arg(long, value_name = "MS", env = "GATEWAY_ROLLING_WINDOW_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub rolling_window_ms: u64,

    /// How many buckets the rolling window is cut into; counts expire one
    /// bucket at a time.
    #[arg(long, value_name = "COUNT", env = "GATEWAY_ROLLING_WINDOW_BUCKETS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=i64::from(BreakerConfig::MAX_BUCKETS)))]
    pub rolling_window_buckets: u32,

    /// How many trial calls a half-open circuit admits; that many
    /// successes close it, and any failed trial opens it again.
    #[arg(long, value_name = "CALLS", env = "GATEWAY_HALF_OPEN_TRIALS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub half_open_trials: u32,

    /// The longest a circuit stays half-open waiting for its trial calls to
    /// complete, in milliseconds; past it, it opens again.
    #[arg(long, value_name = "MS", env = "GATEWAY_HALF_OPEN_MAX_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub half_open_max_ms: u64,

    /// Each consecutive reopening (a failed trial) multiplies the reset
    /// timeout by this factor, up to --max-reset-timeout-ms; 1 keeps it
    /// constant. It goes back to --reset-timeout-ms when the circuit closes.
    #[arg(long, value_name = "FACTOR", env = "GATEWAY_RESET_TIMEOUT_MULTIPLIER", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub reset_timeout_multiplier: u32,

    /// The longest the reset timeout grows to, in milliseconds.
    #[arg(long, value_name = "MS", env = "GATEWAY_MAX_RESET_TIMEOUT_MS", default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub max_reset_timeout_ms: u64,

    /// A backend call that takes at least this long is slow, in
    /// milliseconds; 0 turns slow-call detection off.
    #[arg(long, value_name = "MS", env = "GATEWAY_SLOW_CALL_MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub slow_call_ms: u64,

    /// The circuit also opens when slow calls reach this percentage of the
    /// calls in the rolling window (1 to 100), with --slow-call-ms set.
    #[arg(long, value_name = "PERCENT", env = "GATEWAY_SLOW_CALL_THRESHOLD_PERCENTAGE", default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub slow_call_threshold_percentage: u8,

    /// The gRPC codes from the backend that count as its failures (and are
    /// answered from the cache), comma-separated; DEADLINE_EXCEEDED counts
    /// as a timeout. Every other code is the caller's own error and passes
    /// through.
    #[arg(long, value_name = "CODES", env = "GATEWAY_FAILURE_CODES", default_value = "UNAVAILABLE,DEADLINE_EXCEEDED,INTERNAL,UNKNOWN,RESOURCE_EXHAUSTED", value_parser = GrpcFailureCodes::parse)]
    pub failure_codes: GrpcFailureCodes,

    /// The most circuits (one per backend method); methods beyond share
    /// one more circuit, `_other`.
    #[arg(long, value_name = "COUNT", env = "GATEWAY_MAX_CIRCUITS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_circuits: u32,

    /// The stale window: how long after it was stored a last-known-good
    /// answer may still be served when the backend fails, in seconds. Past
    /// it, the answer is gone.
    #[arg(long, value_name = "SECS", env = "GATEWAY_CACHE_TTL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub cache_ttl_secs: u64,

    /// The fresh window, in milliseconds: within it, a cached answer is
    /// served without calling the backend (`x-cache: hit`). 0 (the
    /// default) always asks the backend.
    #[arg(long, value_name = "MS", env = "GATEWAY_CACHE_FRESH_MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=31_536_000_000))]
    pub cache_fresh_ms: u64,

    /// Windows of one method, over the two above:
    /// `METHOD=fresh:DURATION,stale:DURATION`, for example
    /// `/catalog.v1.CatalogService/ListProducts=fresh:5s,stale:10m`. Repeat
    /// the flag for more methods (`;` between them in the variable).
    #[arg(long = "cache-window", value_name = "METHOD=WINDOWS", env = "GATEWAY_CACHE_WINDOWS", value_delimiter = ';', value_parser = parse_method_windows)]
    pub cache_windows: Vec<(String, Windows)>,

    /// A hit past half its fresh window also refreshes the answer in the
    /// background, once.
    #[arg(long, env = "GATEWAY_CACHE_STALE_WHILE_REVALIDATE")]
    pub cache_stale_while_revalidate: bool,

    /// How long a NOT_FOUND from the backend is cached and answered again,
    /// in milliseconds; 0 (the default) never caches it.
    #[arg(long, value_name = "MS", env = "GATEWAY_CACHE_NOT_FOUND_MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    pub cache_not_found_ms: u64,

    /// The namespace of the cache keys, so that deployments can share a
    /// Redis.
    #[arg(long, value_name = "NAME", env = "GATEWAY_CACHE_NAMESPACE", default_value = "catalog-gateway", value_parser = parse_namespace)]
    pub cache_namespace: String,

    /// Answers larger than this many bytes are not cached.
    #[arg(long, value_name = "BYTES", env = "GATEWAY_CACHE_MAX_ENTRY_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=512 * 1024 * 1024))]
    pub cache_max_entry_bytes: u64,

    /// An answer identical to the one last written to Redis is not written
    /// again before this many milliseconds.
    #[arg(long, value_name = "MS", env = "GATEWAY_CACHE_REWRITE_INTERVAL_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub cache_rewrite_interval_ms: u64,

    /// The size limit of the in-process cache tier, in bytes.
    #[arg(long, value_name = "BYTES", env = "GATEWAY_CACHE_MAX_BYTES", default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024 * 1024))]
    pub cache_max_bytes: u64,

    /// The most identical-request groups sharing a backend call at once;
    /// past it, requests call alone.
    #[arg(long, value_name = "COUNT", env = "GATEWAY_COALESCE_MAX_IN_FLIGHT", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub coalesce_max_in_flight: u64,

    /// The Redis ACL user, over the URL's.
    #[arg(long, value_name = "USER", env = "GATEWAY_REDIS_USERNAME")]
    pub redis_username: Option<String>,

    /// The Redis password, over the URL's.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "GATEWAY_REDIS_PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<String>,

    /// For rediss:// URLs: a PEM file of the certificate authorities to
    /// trust, instead of the system's.
    #[arg(long, value_name = "FILE", env = "GATEWAY_REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<std::path::PathBuf>,

    /// The number of Redis connections, used in turn.
    #[arg(long, value_name = "COUNT", env = "GATEWAY_REDIS_POOL_SIZE", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub redis_pool_size: u64,
}

/// A method's two cache windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Within it, a cached answer is served without calling the backend.
    pub fresh: Duration,
    /// Within it, a cached answer is served when the backend fails.
    pub stale: Duration,
}

/// The windows of every method: the default, and those set per method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodWindows {
    default: Windows,
    methods: std::collections::HashMap<String, Windows>,
}

impl MethodWindows {
    /// The same windows for every method.
    pub fn uniform(windows: Windows) -> Self {
        Self {
            default: windows,
            methods: std::collections::HashMap::new(),
        }
    }

    /// The windows of `method`.
    pub fn get(&self, method: &str) -> Windows {
        self.methods.get(method).copied().unwrap_or(self.default)
    }
}

/// A combination of flags that cannot work together.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(String);

impl From<String> for InvalidConfig {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl Config {
    /// Checks what single flags cannot: how they combine.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            return Err(InvalidConfig(format!(
                "--listen and --admin-listen are both {}; the admin service must have a listener of its own",
                self.listen
            )));
        }
        let windows = self.windows();
        for (method, method_windows) in std::iter::once(("every method", windows.default))
            .chain(self.cache_windows.iter().map(|(m, w)| (m.as_str(), *w)))
        {
            if method_windows.fresh > method_windows.stale {
                return Err(InvalidConfig(format!(
                    "the fresh window ({:?}) of {method} must not be longer than its stale window ({:?}): see --cache-fresh-ms, --cache-ttl-secs and --cache-window",
                    method_windows.fresh, method_windows.stale
                )));
            }
        }
        self.breaker().validate().map_err(|error| {
            InvalidConfig(match error {
                InvalidBreakerConfig::Window { .. } => format!(
                    "--rolling-window-ms ({}) must be at most 3600000 and give each of the --rolling-window-buckets ({}) at least 1ms",
                    self.rolling_window_ms, self.rolling_window_buckets
                ),
                InvalidBreakerConfig::MaxResetTimeout { .. } => format!(
                    "--max-reset-timeout-ms ({}) must be at least --reset-timeout-ms ({})",
                    self.max_reset_timeout_ms, self.reset_timeout_ms
                ),
                // The flags' own ranges keep every other field valid.
                other => format!("invalid breaker settings: {other}"),
            })
        })
    }

    /// The breaker settings, one circuit per backend method.
    pub fn breaker(&self) -> BreakerConfig {
        BreakerConfig {
            failure_threshold_percent: self.error_threshold_percentage,
            volume_threshold: self.volume_threshold,
            reset_timeout: Duration::from_millis(self.reset_timeout_ms),
            reset_timeout_multiplier: self.reset_timeout_multiplier,
            max_reset_timeout: Duration::from_millis(self.max_reset_timeout_ms),
            half_open_trials: self.half_open_trials,
            half_open_max_duration: Duration::from_millis(self.half_open_max_ms),
            window: Duration::from_millis(self.rolling_window_ms),
            buckets: self.rolling_window_buckets,
            slow_call_duration: (self.slow_call_ms > 0)
                .then(|| Duration::from_millis(self.slow_call_ms)),
            slow_call_threshold_percent: self.slow_call_threshold_percentage,
        }
    }

    /// The cache settings, its keys under `schema`.
    pub fn cache(&self, schema: &str) -> CacheConfig {
        CacheConfig {
            keys: KeySpace::new(&self.cache_namespace, schema),
            memory_capacity_bytes: self.cache_max_bytes,
            max_entry_bytes: usize::try_from(self.cache_max_entry_bytes).unwrap_or(usize::MAX),
            rewrite_interval: Duration::from_millis(self.cache_rewrite_interval_ms),
            ..CacheConfig::default()
        }
    }

    /// The cache windows of every method.
    pub fn windows(&self) -> MethodWindows {
        MethodWindows {
            default: Windows {
                fresh: Duration::from_millis(self.cache_fresh_ms),
                stale: Duration::from_secs(self.cache_ttl_secs),
            },
            methods: self.cache_windows.iter().cloned().collect(),
        }
    }

    /// How long a NOT_FOUND is cached, if it is.
    pub fn negative_ttl(&self) -> Option<Duration> {
        (self.cache_not_found_ms > 0).then(|| Duration::from_millis(self.cache_not_found_ms))
    }

    /// How to talk to Redis, when it is configured.
    pub fn redis(&self) -> RedisOptions {
        RedisOptions {
            command_timeout: Duration::from_millis(self.redis_timeout_ms),
            pool_size: usize::try_from(self.redis_pool_size).unwrap_or(1),
            username: self.redis_username.clone(),
            password: self.redis_password.clone(),
            tls_ca_file: self.redis_tls_ca_file.clone(),
            ..RedisOptions::default()
        }
    }

    /// The gateway's budget for one backend call.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// How much of a caller's deadline is kept for the fallback.
    pub fn fallback_reserve(&self) -> Duration {
        Duration::from_millis(self.fallback_reserve_ms)
    }

    /// The settings with every default, and the given backend: a starting
    /// point for tests and embedders.
    pub fn with_backend(backend_url: Uri) -> Self {
        let mut config = Self::parse_from(["gateway"]);
        config.backend_url = backend_url;
        config
    }
}

fn parse_method_windows(value: &str) -> Result<(String, Windows), String> {
    let expected = "expected METHOD=fresh:DURATION,stale:DURATION, such as /catalog.v1.CatalogService/ListProducts=fresh:5s,stale:10m";
    let (method, windows) = value
        .split_once('=')
        .ok_or_else(|| format!("no '='; {expected}"))?;
    if !method.starts_with('/') || method.matches('/').count() != 2 {
        return Err(format!("{method:?} is not a gRPC method path; {expected}"));
    }
    let (mut fresh, mut stale) = (None, None);
    for part in windows.split(',') {
        let (name, duration) = part
            .split_once(':')
            .ok_or_else(|| format!("{part:?} has no ':'; {expected}"))?;
        let duration = humantime::parse_duration(duration.trim())
            .map_err(|error| format!("{part:?}: {error}; {expected}"))?;
        match name.trim() {
            "fresh" => fresh = Some(duration),
            "stale" => stale = Some(duration),
            other => return Err(format!("unknown window {other:?}; {expected}")),
        }
    }
    let (Some(fresh), Some(stale)) = (fresh, stale) else {
        return Err(format!("give both windows; {expected}"));
    };
    if stale.is_zero() {
        return Err(format!(
            "the stale window must be longer than zero; {expected}"
        ));
    }
    Ok((method.to_owned(), Windows { fresh, stale }))
}

fn parse_namespace(value: &str) -> Result<String, String> {
    if value.is_empty() || value.contains(char::is_whitespace) || value.contains(':') {
        return Err("a namespace is a non-empty word without spaces or ':'".into());
    }
    Ok(value.to_owned())
}

fn parse_backend_url(value: &str) -> Result<Uri, String> {
    let uri: Uri = value
        .parse()
        .map_err(|error| format!("not a URL ({error}); expected http://host:port"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "scheme {other:?} is not supported; expected http://host:port"
            ));
        }
        None => return Err("no scheme; expected http://host:port".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host; expected http://host:port".into());
    }
    Ok(uri)
}

fn parse_redis_url(value: &str) -> Result<String, String> {
    resilient_catalog::cache::check_redis_url(value).map(|()| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let config = Config::try_parse_from(std::iter::once("gateway").chain(args.iter().copied()))
            .map_err(|error| error.to_string())?;
        config.validate().map_err(|error| error.to_string())?;
        Ok(config)
    }

    #[test]
    fn the_defaults_work() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, "0.0.0.0:50051".parse().unwrap());
        assert_eq!(config.admin_listen, "127.0.0.1:50053".parse().unwrap());
        assert_eq!(config.backend_url, "http://127.0.0.1:50052");
        assert_eq!(config.timeout(), Duration::from_secs(3));
        assert_eq!(config.fallback_reserve(), Duration::from_millis(20));
        assert_eq!(config.breaker(), BreakerConfig::default());
        assert_eq!(config.failure_codes, GrpcFailureCodes::DEFAULT);
        let windows = config
            .windows()
            .get("/catalog.v1.CatalogService/GetProduct");
        assert_eq!(
            (windows.fresh, windows.stale),
            (Duration::ZERO, Duration::from_secs(300))
        );
        assert_eq!(config.negative_ttl(), None);
    }

    #[test]
    fn windows_can_be_set_per_method() {
        let config = parse(&[
            "--cache-fresh-ms",
            "1000",
            "--cache-window",
            "/catalog.v1.CatalogService/ListProducts=fresh:5s,stale:10m",
        ])
        .unwrap();
        let windows = config.windows();
        assert_eq!(
            windows.get("/catalog.v1.CatalogService/ListProducts"),
            Windows {
                fresh: Duration::from_secs(5),
                stale: Duration::from_secs(600)
            }
        );
        assert_eq!(
            windows.get("/catalog.v1.CatalogService/GetProduct"),
            Windows {
                fresh: Duration::from_secs(1),
                stale: Duration::from_secs(300)
            }
        );
        assert_eq!(config.redis_url, None);
        let config = parse(&["--redis-url", "redis://user:secret@cache:6380/2"]).unwrap();
        assert_eq!(
            config.redis_url.as_deref(),
            Some("redis://user:secret@cache:6380/2")
        );
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (
                &["--error-threshold-percentage", "150"][..],
                "--error-threshold-percentage",
            ),
            (
                &["--error-threshold-percentage", "0"],
                "--error-threshold-percentage",
            ),
            (
                &["--rolling-window-buckets", "0"],
                "--rolling-window-buckets",
            ),
            (&["--backend-url", "not a url"], "--backend-url"),
            (&["--backend-url", "ftp://backend:50052"], "--backend-url"),
            (&["--backend-url", "backend:50052"], "--backend-url"),
            (&["--redis-url", "nope://cache:6379"], "--redis-url"),
            (&["--redis-url", "redis://"], "--redis-url"),
            (&["--redis-url", "foo"], "--redis-url"),
            (&["--redis-url", "redis://cache:notaport"], "--redis-url"),
            (&["--cache-max-bytes", "0"], "--cache-max-bytes"),
            (&["--timeout-ms", "0"], "--timeout-ms"),
            (&["--listen", "localhost"], "--listen"),
            (
                &["--rolling-window-ms", "5", "--rolling-window-buckets", "10"],
                "--rolling-window-ms",
            ),
            (
                &[
                    "--listen",
                    "127.0.0.1:9000",
                    "--admin-listen",
                    "127.0.0.1:9000",
                ],
                "--admin-listen",
            ),
        ] {
            let error = parse(args).expect_err(&format!("{args:?} must be refused"));
            assert!(error.contains(flag), "{args:?}: {error}");
        }
    }
}
