//! The resilient call: a fresh cached answer if there is one; else one
//! backend call, shared by every identical request in the air, through the
//! method's circuit and the gateway's budget; and the last known good
//! answer when that fails.
//!
//! The backend is the source of truth. The cache is written after every
//! success. It is read before the call only for answers within the
//! method's fresh window (none by default), and after a failure, timeout or
//! open circuit, or when the caller's deadline is near and the backend has
//! not answered, for answers within its stale window. The caller's own
//! errors (`NOT_FOUND`, `INVALID_ARGUMENT`, ...) pass through unchanged and
//! never count against the backend.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use prost::Message;
use resilient_catalog::{
    breaker::{BreakerError, CircuitBreakerLayer, CircuitRegistry, CircuitState, GrpcFailureCodes},
    cache::{CacheKey, Cached, LastKnownGood, Payload},
    coalesce::Coalescer,
    deadline, grpc_code,
};
use tokio::time::Instant;
use tonic::{Code, Request, Response, Status};
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tracing::{Instrument as _, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    budget::Budget,
    config::{MethodWindows, Windows},
    metadata::{self, CacheStatus},
    status::{self, SharedStatus},
};

/// Everything a resilient call needs, shared by every method.
#[derive(Clone, Debug)]
pub(crate) struct Fallback {
    /// One circuit per backend method.
    pub(crate) circuits: Arc<CircuitRegistry>,
    /// What counts as a failure of the backend, for the circuit and for the
    /// fallback alike.
    pub(crate) failures: GrpcFailureCodes,
    /// The last-known-good answers.
    pub(crate) cache: LastKnownGood,
    /// The gateway's budget for one backend call.
    pub(crate) timeout: Duration,
    /// How much of a caller's deadline is kept for the fallback.
    pub(crate) reserve: Duration,
    /// The fresh and stale windows of each method.
    pub(crate) windows: Arc<MethodWindows>,
    /// How long a `NOT_FOUND` is cached, if it is.
    pub(crate) negative_ttl: Option<Duration>,
    /// Whether a fresh hit past half its window refreshes the answer in the
    /// background.
    pub(crate) revalidate: bool,
    /// Identical requests in the air share one backend call.
    pub(crate) coalescer: Arc<Coalescer<CacheKey, Outcome>>,
    /// The answers given, by where they came from.
    pub(crate) counters: Arc<AnswerCounters>,
}

/// Answers given since start, by `x-cache`.
#[derive(Debug, Default)]
pub(crate) struct AnswerCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) revalidations: AtomicU64,
}

/// How a backend call ended, as every caller that shared it answers.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// The backend's answer, encoded.
    Fresh(Bytes),
    /// The last known good answer, in place of the backend's.
    Stale { bytes: Bytes, age: Duration },
    /// An error for the caller: its own error from the backend, a cached
    /// `NOT_FOUND`, or `UNAVAILABLE`.
    Error {
        status: SharedStatus,
        cache: CacheStatus,
    },
}

impl Fallback {
    /// Answers a call to `method`. The answer, success or error, carries
    /// the `x-cache` and `x-circuit-state` metadata.
    pub(crate) async fn call<Req, Resp, S>(
        &self,
        method: &'static str,
        request: Request<Req>,
        backend: S,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Default + 'static,
        S: Service<Request<Req>, Response = Response<Resp>, Error = Status>
            + Clone
            + Send
            + 'static,
        S::Future: Send,
    {
        let windows = self.windows.get(method);
        let key = self
            .cache
            .keys()
            .key(method, &request.get_ref().encode_to_vec());
        let caller_timeout = deadline::caller_timeout(request.metadata().as_ref());

        if let Some(hit) = self.fresh(&key, windows).await {
            if self.revalidate
                && matches!(hit.payload, Payload::Value(_))
                && hit.age >= windows.fresh / 2
            {
                self.revalidate::<Req, Resp, S>(
                    method,
                    key,
                    windows,
                    request.get_ref().clone(),
                    backend,
                );
            }
            let outcome = match hit.payload {
                Payload::Value(bytes) => {
                    return self.reply(method, bytes, CacheStatus::Hit { age: hit.age });
                }
                Payload::Negative => Outcome::Error {
                    status: SharedStatus::not_found(),
                    cache: CacheStatus::Hit { age: hit.age },
                },
            };
            return self.reply_outcome(method, outcome);
        }

        let message = request.into_inner();
        let fetch = {
            let this = self.clone();
            let key = key.clone();
            move || async move {
                this.fetch::<Req, Resp, S>(method, &key, windows, message, caller_timeout, backend)
                    .await
            }
        };
        let outcome = match caller_timeout {
            // The caller's deadline comes before our budget runs out. Then
            // the caller waits for the backend until `reserve` before its
            // deadline, and takes the last known good answer if there is
            // one; else it waits on. A call the caller leaves is abandoned,
            // not failed: a dropped permit counts nothing, so one impatient
            // caller cannot open the circuit for everyone, and callers
            // sharing the call take it over. (The listener's
            // `DeadlineLayer` answers a moment before the deadline and drops
            // the call the same way; the timer here keeps the rule true for
            // the proxy on its own.)
            Some(caller) if self.patience(caller) < self.timeout => {
                let deadline = Instant::now() + caller;
                let call = self.coalescer.run(key.clone(), fetch);
                tokio::pin!(call);
                if let Ok(outcome) = tokio::time::timeout(self.patience(caller), &mut call).await {
                    outcome
                } else if let Some(stale) = self.before::<Resp>(deadline, &key, windows).await {
                    stale
                } else if let Ok(outcome) = tokio::time::timeout_at(deadline, call).await {
                    outcome
                } else {
                    return Err(self.refuse(
                        method,
                        Status::deadline_exceeded(
                            "the caller's deadline passed before the backend answered",
                        ),
                    ));
                }
            }
            _ => self.coalescer.run(key, fetch).await,
        };
        self.reply_outcome(method, outcome)
    }

    /// How long a caller with a deadline `caller` away waits for the
    /// backend before it looks for the last known good answer: up to
    /// `reserve` less, and at least half.
    fn patience(&self, caller: Duration) -> Duration {
        caller - self.reserve.min(caller / 2)
    }

    /// The last known good answer for a caller whose deadline is near, if
    /// the lookup ends before the deadline.
    async fn before<Resp: Message + Default>(
        &self,
        deadline: Instant,
        key: &CacheKey,
        windows: Windows,
    ) -> Option<Outcome> {
        if self.reserve.is_zero() {
            return None;
        }
        tracing::debug!(
            "the backend has not answered and the caller's deadline is near; looking for a cached answer"
        );
        tokio::time::timeout_at(deadline, self.stale::<Resp>(key, windows))
            .await
            .ok()
            .flatten()
    }

    /// A cached answer young enough to serve without calling the backend:
    /// a value within the fresh window, or a `NOT_FOUND` within the
    /// negative TTL.
    async fn fresh(&self, key: &CacheKey, windows: Windows) -> Option<Cached> {
        let negative = self.negative_ttl.unwrap_or_default();
        let max_age = windows.fresh.max(negative);
        if max_age.is_zero() {
            return None;
        }
        let cached = self.cache.get(key, max_age).await?;
        let window = match cached.payload {
            Payload::Value(_) => windows.fresh,
            Payload::Negative => negative,
        };
        (cached.age < window).then_some(cached)
    }

    /// The backend call, and the fallback when it fails. Made once for all
    /// the identical requests in the air.
    async fn fetch<Req, Resp, S>(
        &self,
        method: &'static str,
        key: &CacheKey,
        windows: Windows,
        message: Req,
        caller_timeout: Option<Duration>,
        backend: S,
    ) -> Outcome
    where
        Req: Message,
        Resp: Message + Default,
        S: Service<Request<Req>, Response = Response<Resp>, Error = Status>,
    {
        let circuit = self.circuits.circuit(method);
        // Only the message goes on. The deadline and the trace context are
        // set afresh; the caller's other metadata is not the backend's.
        let mut outgoing = Request::new(message);
        outgoing
            .set_timeout(caller_timeout.map_or(self.timeout, |caller| caller.min(self.timeout)));

        let result = ServiceBuilder::new()
            // The circuit: rejects at once while open, counts every outcome.
            .layer(CircuitBreakerLayer::new(circuit, self.failures))
            // The gateway's own budget: a backend that uses it all up has
            // timed out.
            .layer_fn(|backend| Budget {
                backend,
                budget: self.timeout,
            })
            .service(backend)
            .oneshot(outgoing)
            .await;

        Span::current().set_attribute(
            "circuit.decision",
            if matches!(result, Err(BreakerError::Open(_))) {
                "rejected"
            } else {
                "admitted"
            },
        );
        match result {
            Ok(response) => {
                let bytes = Bytes::from(response.into_inner().encode_to_vec());
                self.cache
                    .put(key.clone(), Payload::Value(bytes.clone()), windows.stale);
                Outcome::Fresh(bytes)
            }
            Err(BreakerError::Inner(status)) if !self.failures.is_failure(status.code()) => {
                if status.code() == Code::NotFound
                    && let Some(ttl) = self.negative_ttl
                {
                    self.cache.put(key.clone(), Payload::Negative, ttl);
                }
                Outcome::Error {
                    status: SharedStatus::from(&status),
                    cache: CacheStatus::Miss,
                }
            }
            Err(error) => {
                match &error {
                    BreakerError::Open(open) => {
                        tracing::debug!(%open, "circuit open; the backend was not called");
                    }
                    BreakerError::Inner(status) => tracing::debug!(
                        code = grpc_code::name(status.code()),
                        message = status.message(),
                        "the backend call failed; looking for a cached answer"
                    ),
                }
                self.stale::<Resp>(key, windows)
                    .await
                    .unwrap_or_else(|| Outcome::Error {
                        status: SharedStatus::from(&status::unavailable(&error)),
                        cache: CacheStatus::Miss,
                    })
            }
        }
    }

    /// The last known good answer, if one is within the stale window and
    /// decodes.
    async fn stale<Resp: Message + Default>(
        &self,
        key: &CacheKey,
        windows: Windows,
    ) -> Option<Outcome> {
        let cached = self.cache.get(key, windows.stale).await?;
        match cached.payload {
            Payload::Value(bytes) => {
                if let Err(error) = Resp::decode(bytes.clone()) {
                    tracing::warn!(%error, "a cached answer does not decode");
                    self.cache.discard(key).await;
                    return None;
                }
                Some(Outcome::Stale {
                    bytes,
                    age: cached.age,
                })
            }
            Payload::Negative if self.negative_ttl.is_some_and(|ttl| cached.age < ttl) => {
                Some(Outcome::Error {
                    status: SharedStatus::not_found(),
                    cache: CacheStatus::Stale { age: cached.age },
                })
            }
            Payload::Negative => None,
        }
    }

    /// Refreshes a cached answer in the background, unless a call for it is
    /// in the air already.
    fn revalidate<Req, Resp, S>(
        &self,
        method: &'static str,
        key: CacheKey,
        windows: Windows,
        message: Req,
        backend: S,
    ) where
        Req: Message + Send + 'static,
        Resp: Message + Default + 'static,
        S: Service<Request<Req>, Response = Response<Resp>, Error = Status> + Send + 'static,
        S::Future: Send,
    {
        let Some(lead) = self.coalescer.try_lead(&key) else {
            return;
        };
        self.counters.revalidations.fetch_add(1, Relaxed);
        let this = self.clone();
        let span = tracing::info_span!("cache.revalidate", otel.kind = "internal");
        tokio::spawn(
            async move {
                let outcome = this
                    .fetch::<Req, Resp, S>(method, &key, windows, message, None, backend)
                    .await;
                lead.land(outcome);
            }
            .instrument(span),
        );
    }

    fn reply_outcome<Resp: Message + Default>(
        &self,
        method: &str,
        outcome: Outcome,
    ) -> Result<Response<Resp>, Status> {
        match outcome {
            Outcome::Fresh(bytes) => self.reply(method, bytes, CacheStatus::Miss),
            Outcome::Stale { bytes, age } => self.reply(method, bytes, CacheStatus::Stale { age }),
            Outcome::Error { status, cache } => {
                self.count(cache);
                let state = self.circuits.circuit(method).state();
                Err(tagged(status.to_status(), cache, state))
            }
        }
    }

    /// An answer from encoded bytes (the backend's, or the cache's).
    fn reply<Resp: Message + Default>(
        &self,
        method: &str,
        bytes: Bytes,
        cache: CacheStatus,
    ) -> Result<Response<Resp>, Status> {
        let state = self.circuits.circuit(method).state();
        let message = Resp::decode(bytes).map_err(|error| {
            // Checked before it was shared, so this does not happen.
            tagged(
                Status::internal(format!("an answer does not decode: {error}")),
                cache,
                state,
            )
        })?;
        self.count(cache);
        record(&Span::current(), cache, state);
        let mut response = Response::new(message);
        metadata::insert(response.metadata_mut(), cache, state);
        Ok(response)
    }

    /// The gateway's own refusal of a request (bad input, or a caller that
    /// gave up), with the usual metadata.
    pub(crate) fn refuse(&self, method: &str, status: Status) -> Status {
        tagged(
            status,
            CacheStatus::Miss,
            self.circuits.circuit(method).state(),
        )
    }

    fn count(&self, cache: CacheStatus) {
        let counter = match cache {
            CacheStatus::Miss => &self.counters.misses,
            CacheStatus::Hit { .. } => &self.counters.hits,
            CacheStatus::Stale { .. } => &self.counters.stale,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// An error answer, with the metadata on it and on the request's span.
fn tagged(mut status: Status, cache: CacheStatus, state: CircuitState) -> Status {
    record(&Span::current(), cache, state);
    metadata::insert(status.metadata_mut(), cache, state);
    status
}

/// Puts the outcome on the request's span, where a trace shows it.
fn record(span: &Span, cache: CacheStatus, state: CircuitState) {
    span.set_attribute("cache.status", cache.as_str());
    span.set_attribute("circuit.state", state.as_str());
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering::SeqCst},
    };

    use resilient_catalog::{
        breaker::BreakerConfig,
        cache::CacheConfig,
        proto::catalog::v1::{GET_PRODUCT_PATH, GetProductRequest, GetProductResponse, Product},
    };
    use tower::service_fn;

    use super::*;

    /// What the scripted backend does.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Script {
        Answer,
        Fail,
        NotFound,
    }

    /// A backend that follows a script and counts its calls.
    #[derive(Clone)]
    struct Backend {
        script: Arc<Mutex<Script>>,
        takes: Duration,
        calls: Arc<AtomicUsize>,
    }

    impl Backend {
        fn new(takes: Duration) -> Self {
            Self {
                script: Arc::new(Mutex::new(Script::Answer)),
                takes,
                calls: Arc::default(),
            }
        }

        fn set(&self, script: Script) {
            *self.script.lock().unwrap() = script;
        }

        fn calls(&self) -> usize {
            self.calls.load(SeqCst)
        }

        fn service(
            &self,
        ) -> impl Service<
            Request<GetProductRequest>,
            Response = Response<GetProductResponse>,
            Error = Status,
            Future = impl Send,
        > + Clone
        + Send
        + 'static {
            let backend = self.clone();
            service_fn(move |request: Request<GetProductRequest>| {
                let backend = backend.clone();
                async move {
                    backend.calls.fetch_add(1, SeqCst);
                    tokio::time::sleep(backend.takes).await;
                    let script = *backend.script.lock().unwrap();
                    match script {
                        Script::Answer => Ok(Response::new(GetProductResponse {
                            product: Some(Product {
                                id: request.into_inner().id,
                                ..Product::default()
                            }),
                        })),
                        Script::Fail => Err(Status::unavailable("scripted outage")),
                        Script::NotFound => Err(Status::not_found("no such product")),
                    }
                }
            })
        }
    }

    fn fallback(fresh: Duration, stale: Duration) -> Fallback {
        Fallback {
            circuits: Arc::new(
                CircuitRegistry::new(
                    BreakerConfig {
                        volume_threshold: 1_000, // never opens here
                        ..BreakerConfig::default()
                    },
                    10,
                )
                .unwrap(),
            ),
            failures: GrpcFailureCodes::DEFAULT,
            cache: LastKnownGood::in_memory(&CacheConfig::default()),
            timeout: Duration::from_secs(3),
            reserve: Duration::from_millis(20),
            windows: Arc::new(MethodWindows::uniform(Windows { fresh, stale })),
            negative_ttl: None,
            revalidate: false,
            coalescer: Arc::new(Coalescer::new(100)),
            counters: Arc::default(),
        }
    }

    async fn get(
        fallback: &Fallback,
        backend: &Backend,
        id: &str,
    ) -> Result<Response<GetProductResponse>, Status> {
        let request = Request::new(GetProductRequest { id: id.into() });
        fallback
            .call(GET_PRODUCT_PATH, request, backend.service())
            .await
    }

    fn x_cache<T>(result: &Result<Response<T>, Status>) -> (String, Option<u64>) {
        let metadata = match result {
            Ok(response) => response.metadata(),
            Err(status) => status.metadata(),
        };
        let value = |key| metadata.get(key).map(|v| v.to_str().unwrap().to_owned());
        (
            value("x-cache").unwrap(),
            value("x-cache-age").map(|age| age.parse().unwrap()),
        )
    }

    const SECOND: Duration = Duration::from_secs(1);
    const MILLI: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn within_the_fresh_window_the_backend_is_not_called() {
        let (fallback, backend) = (
            fallback(10 * SECOND, 60 * SECOND),
            Backend::new(Duration::ZERO),
        );
        assert_eq!(
            x_cache(&get(&fallback, &backend, "a").await),
            ("miss".into(), None)
        );

        tokio::time::advance(10 * SECOND - MILLI).await;
        let hit = get(&fallback, &backend, "a").await;
        assert_eq!(x_cache(&hit), ("hit".into(), Some(9)));
        assert_eq!(hit.unwrap().into_inner().product.unwrap().id, "a");
        assert_eq!(backend.calls(), 1);

        // At 10s the answer is no longer fresh: the backend is asked.
        tokio::time::advance(MILLI).await;
        assert_eq!(
            x_cache(&get(&fallback, &backend, "a").await),
            ("miss".into(), None)
        );
        assert_eq!(backend.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn within_the_stale_window_a_failure_is_answered_and_past_it_not() {
        let (fallback, backend) = (
            fallback(Duration::ZERO, 60 * SECOND),
            Backend::new(Duration::ZERO),
        );
        get(&fallback, &backend, "a").await.unwrap();
        backend.set(Script::Fail);

        tokio::time::advance(60 * SECOND - MILLI).await;
        let stale = get(&fallback, &backend, "a").await;
        assert_eq!(x_cache(&stale), ("stale".into(), Some(59)));
        assert_eq!(stale.unwrap().into_inner().product.unwrap().id, "a");

        tokio::time::advance(MILLI).await;
        let gone = get(&fallback, &backend, "a").await;
        assert_eq!(x_cache(&gone), ("miss".into(), None));
        assert_eq!(gone.unwrap_err().code(), Code::Unavailable);
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_fresh_window_the_backend_is_always_asked() {
        let (fallback, backend) = (
            fallback(Duration::ZERO, 60 * SECOND),
            Backend::new(Duration::ZERO),
        );
        for _ in 0..3 {
            assert_eq!(x_cache(&get(&fallback, &backend, "a").await).0, "miss");
        }
        assert_eq!(backend.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hit_past_half_its_fresh_window_refreshes_once_in_the_background() {
        let mut fallback = fallback(10 * SECOND, 60 * SECOND);
        fallback.revalidate = true;
        let backend = Backend::new(Duration::ZERO);
        get(&fallback, &backend, "a").await.unwrap();

        tokio::time::advance(5 * SECOND - MILLI).await;
        assert_eq!(x_cache(&get(&fallback, &backend, "a").await).0, "hit");
        tokio::task::yield_now().await;
        assert_eq!(backend.calls(), 1, "not yet half way: no refresh");

        tokio::time::advance(MILLI).await;
        assert_eq!(
            x_cache(&get(&fallback, &backend, "a").await),
            ("hit".into(), Some(5))
        );
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(backend.calls(), 2, "one refresh");
        // The refreshed answer is young again: no further refresh.
        assert_eq!(
            x_cache(&get(&fallback, &backend, "a").await),
            ("hit".into(), Some(0))
        );
        tokio::task::yield_now().await;
        assert_eq!(backend.calls(), 2);
        assert_eq!(fallback.counters.revalidations.load(Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hundred_identical_requests_make_one_backend_call() {
        let fallback = fallback(Duration::ZERO, 60 * SECOND);
        let backend = Backend::new(100 * MILLI);
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let (fallback, backend) = (fallback.clone(), backend.clone());
                tokio::spawn(async move { get(&fallback, &backend, "a").await })
            })
            .collect();
        for call in calls {
            let answer = call.await.unwrap();
            assert_eq!(x_cache(&answer).0, "miss");
            assert_eq!(answer.unwrap().into_inner().product.unwrap().id, "a");
        }
        assert_eq!(backend.calls(), 1);
        assert_eq!(fallback.coalescer.followers(), 99);

        // Different requests do not share.
        let (b, c) = tokio::join!(get(&fallback, &backend, "b"), get(&fallback, &backend, "c"));
        assert!(b.is_ok() && c.is_ok());
        assert_eq!(backend.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn shared_failures_are_shared_too() {
        let fallback = fallback(Duration::ZERO, 60 * SECOND);
        let backend = Backend::new(100 * MILLI);
        backend.set(Script::Fail);
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let (fallback, backend) = (fallback.clone(), backend.clone());
                tokio::spawn(async move { get(&fallback, &backend, "a").await })
            })
            .collect();
        for call in calls {
            let status = call.await.unwrap().unwrap_err();
            assert_eq!(status.code(), Code::Unavailable);
            assert!(
                status.message().contains("scripted outage"),
                "{}",
                status.message()
            );
        }
        assert_eq!(backend.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_is_never_cached_as_product_data() {
        let (fallback, backend) = (
            fallback(10 * SECOND, 60 * SECOND),
            Backend::new(Duration::ZERO),
        );
        backend.set(Script::NotFound);
        for _ in 0..2 {
            let status = get(&fallback, &backend, "a").await.unwrap_err();
            assert_eq!(status.code(), Code::NotFound);
        }
        assert_eq!(backend.calls(), 2, "not cached by default");

        backend.set(Script::Fail);
        let status = get(&fallback, &backend, "a").await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unavailable,
            "no stale answer from a NOT_FOUND"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_can_be_cached_briefly() {
        let mut fallback = fallback(Duration::ZERO, 60 * SECOND);
        fallback.negative_ttl = Some(5 * SECOND);
        let backend = Backend::new(Duration::ZERO);
        backend.set(Script::NotFound);
        get(&fallback, &backend, "a").await.unwrap_err();

        tokio::time::advance(5 * SECOND - MILLI).await;
        let cached = get(&fallback, &backend, "a").await;
        assert_eq!(x_cache(&cached), ("hit".into(), Some(4)));
        assert_eq!(cached.unwrap_err().code(), Code::NotFound);
        assert_eq!(backend.calls(), 1);

        tokio::time::advance(MILLI).await;
        get(&fallback, &backend, "a").await.unwrap_err();
        assert_eq!(backend.calls(), 2, "past its TTL the backend is asked");
    }

    /// `get`, by a caller whose deadline is `deadline` away, and how long
    /// the answer took.
    async fn get_within(
        fallback: &Fallback,
        backend: &Backend,
        id: &str,
        deadline: Duration,
    ) -> (Result<Response<GetProductResponse>, Status>, Duration) {
        let mut request = Request::new(GetProductRequest { id: id.into() });
        request.set_timeout(deadline);
        let start = Instant::now();
        let answer = fallback
            .call(GET_PRODUCT_PATH, request, backend.service())
            .await;
        (answer, start.elapsed())
    }

    #[test]
    fn a_caller_keeps_the_reserve_of_its_deadline_and_waits_at_least_half() {
        let mut fallback = fallback(Duration::ZERO, 60 * SECOND);
        assert_eq!(fallback.patience(500 * MILLI), 480 * MILLI);
        assert_eq!(fallback.patience(30 * MILLI), 15 * MILLI);
        fallback.reserve = Duration::ZERO;
        assert_eq!(fallback.patience(500 * MILLI), 500 * MILLI);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_whose_deadline_is_near_gets_the_last_known_good_answer() {
        let fallback = fallback(Duration::ZERO, 60 * SECOND);
        get(&fallback, &Backend::new(Duration::ZERO), "a")
            .await
            .unwrap();
        tokio::time::advance(2 * SECOND).await;

        let slow = Backend::new(2 * SECOND);
        let (answer, took) = get_within(&fallback, &slow, "a", 500 * MILLI).await;
        assert_eq!(x_cache(&answer), ("stale".into(), Some(2)));
        assert_eq!(answer.unwrap().into_inner().product.unwrap().id, "a");
        assert_eq!(
            took,
            480 * MILLI,
            "the reserve of 20 ms before the deadline"
        );
        assert_eq!(slow.calls(), 1);
        let counts = fallback.circuits.circuit(GET_PRODUCT_PATH).lifetime();
        assert_eq!(
            (counts.successes, counts.failures, counts.timeouts),
            (1, 0, 0),
            "the call the caller left counts nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_nothing_cached_the_caller_waits_for_the_backend_to_its_deadline() {
        let fallback = fallback(Duration::ZERO, 60 * SECOND);
        // Answers after the caller stopped waiting for it, before the deadline.
        let (answer, took) =
            get_within(&fallback, &Backend::new(490 * MILLI), "a", 500 * MILLI).await;
        assert_eq!(x_cache(&answer).0, "miss");
        assert_eq!(answer.unwrap().into_inner().product.unwrap().id, "a");
        assert_eq!(took, 490 * MILLI);

        let (answer, took) =
            get_within(&fallback, &Backend::new(2 * SECOND), "b", 500 * MILLI).await;
        assert_eq!(answer.unwrap_err().code(), Code::DeadlineExceeded);
        assert_eq!(took, 500 * MILLI);
        let counts = fallback.circuits.circuit(GET_PRODUCT_PATH).lifetime();
        assert_eq!((counts.failures, counts.timeouts), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_reserve_the_caller_waits_for_the_backend_to_its_deadline() {
        let mut fallback = fallback(Duration::ZERO, 60 * SECOND);
        fallback.reserve = Duration::ZERO;
        get(&fallback, &Backend::new(Duration::ZERO), "a")
            .await
            .unwrap();
        let (answer, took) =
            get_within(&fallback, &Backend::new(2 * SECOND), "a", 500 * MILLI).await;
        assert_eq!(answer.unwrap_err().code(), Code::DeadlineExceeded);
        assert_eq!(took, 500 * MILLI);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_with_time_for_the_whole_budget_gets_the_timeout_fallback() {
        // A deadline past the budget and its reserve: the budget runs out
        // first, which is the backend's timeout, counted, and answered from
        // the cache as any failure is.
        let fallback = fallback(Duration::ZERO, 60 * SECOND);
        get(&fallback, &Backend::new(Duration::ZERO), "a")
            .await
            .unwrap();
        let (answer, took) =
            get_within(&fallback, &Backend::new(10 * SECOND), "a", 5 * SECOND).await;
        assert_eq!(x_cache(&answer).0, "stale");
        assert_eq!(took, 3 * SECOND);
        let counts = fallback.circuits.circuit(GET_PRODUCT_PATH).lifetime();
        assert_eq!(counts.timeouts, 1);
    }
}
