//! The resilient call: a fresh cached answer if there is one; else one
//! backend call, shared by every identical request in the air, through the
//! method's circuit and the gateway's budget; and the last known good
//! answer when that fails.
//!
//! The backend is the source of truth. The cache is written after every
//! success. It is read before the call only for answers within the
//! method's fresh window (none by default), and after a failure, timeout or
//! open circuit for answers within its stale window. The caller's own
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
    grpc_code,
};
use tonic::{Code, Request, Response, Status};
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tracing::{Instrument as _, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    budget::Budget,
    config::{MethodWindows, Windows},
    deadline,
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
        let caller_timeout = deadline::caller_timeout(request.metadata());

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
            // The caller gives up before our budget runs out. Then the call
            // is abandoned, not failed: a dropped permit counts nothing, so
            // one impatient caller cannot open the circuit for everyone,
            // and callers sharing the call take it over.
            Some(caller) if caller < self.timeout => {
                match tokio::time::timeout(caller, self.coalescer.run(key, fetch)).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        return Err(self.refuse(
                            method,
                            Status::deadline_exceeded(
                                "the caller's deadline passed before the backend answered",
                            ),
                        ));
                    }
                }
            }
            _ => self.coalescer.run(key, fetch).await,
        };
        self.reply_outcome(method, outcome)
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
