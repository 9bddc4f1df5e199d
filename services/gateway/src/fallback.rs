//! The resilient call: through the method's circuit to the backend, and
//! from the last-known-good cache when that fails.
//!
//! The backend is the source of truth. The cache is written after every
//! success and read only when the backend failed, timed out or its circuit
//! is open; the caller's own errors (`NOT_FOUND`, `INVALID_ARGUMENT`, ...)
//! pass through unchanged and never count against the backend.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use prost::Message;
use resilient_catalog::{
    breaker::{BreakerError, CircuitBreakerLayer, CircuitRegistry, CircuitState, GrpcFailureCodes},
    cache::{CacheKey, LastKnownGood},
    grpc_code,
};
use tonic::{Request, Response, Status};
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    deadline,
    metadata::{self, CacheStatus},
    status,
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
}

impl Fallback {
    /// Calls `backend` for `method`, and answers from the cache if that
    /// fails. The answer, success or error, carries the `x-cache` and
    /// `x-circuit-state` metadata.
    pub(crate) async fn call<Req, Resp, S>(
        &self,
        method: &str,
        request: Request<Req>,
        backend: S,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message,
        Resp: Message + Default,
        S: Service<Request<Req>, Response = Response<Resp>, Error = Status>,
    {
        let circuit = self.circuits.circuit(method);
        let key = CacheKey::new(method, &request.get_ref().encode_to_vec());
        let caller_timeout = deadline::caller_timeout(request.metadata());

        // Only the message goes on. The deadline and the trace context are
        // set afresh; the caller's other metadata is not the backend's.
        let mut outgoing = Request::new(request.into_inner());
        outgoing
            .set_timeout(caller_timeout.map_or(self.timeout, |caller| caller.min(self.timeout)));

        let budget = self.timeout;
        let backend = ServiceBuilder::new()
            // The circuit: rejects at once while open, counts every outcome.
            .layer(CircuitBreakerLayer::new(circuit, self.failures))
            // The gateway's own budget: a backend that uses it all up has
            // failed, with DEADLINE_EXCEEDED.
            .layer_fn(|backend| Budget { backend, budget })
            .service(backend);

        let result = match caller_timeout {
            // The caller gives up before our budget runs out. Then the call
            // is abandoned, not failed: the dropped permit counts nothing,
            // so one impatient caller cannot open the circuit for everyone.
            Some(caller) if caller < budget => {
                match tokio::time::timeout(caller, backend.oneshot(outgoing)).await {
                    Ok(result) => result,
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
            _ => backend.oneshot(outgoing).await,
        };

        Span::current().set_attribute(
            "circuit.decision",
            if matches!(result, Err(BreakerError::Open(_))) {
                "rejected"
            } else {
                "admitted"
            },
        );
        let state = circuit.state();
        match result {
            Ok(response) => {
                let message = response.into_inner();
                self.cache.put(key, message.encode_to_vec().into());
                Ok(answer(message, CacheStatus::Miss, state))
            }
            Err(BreakerError::Inner(status)) if !self.failures.is_failure(status.code()) => {
                Err(refusal(status, state))
            }
            Err(error) => {
                match &error {
                    BreakerError::Open(open) => {
                        tracing::debug!(retry_after = ?open.retry_after(), "circuit open; the backend was not called");
                    }
                    BreakerError::Inner(status) => tracing::debug!(
                        code = grpc_code::name(status.code()),
                        message = status.message(),
                        "the backend call failed; looking for a cached answer"
                    ),
                }
                match self.stale::<Resp>(&key).await {
                    Some((message, age)) => Ok(answer(message, CacheStatus::Stale { age }, state)),
                    None => Err(refusal(status::unavailable(&error), state)),
                }
            }
        }
    }

    /// The gateway's own refusal of a request (bad input, or a caller that
    /// gave up), with the usual metadata.
    pub(crate) fn refuse(&self, method: &str, status: Status) -> Status {
        refusal(status, self.circuits.circuit(method).state())
    }

    async fn stale<Resp: Message + Default>(&self, key: &CacheKey) -> Option<(Resp, Duration)> {
        let cached = self.cache.get(key).await?;
        match Resp::decode(cached.bytes) {
            Ok(message) => Some((message, cached.age)),
            Err(error) => {
                tracing::warn!(%error, "a cached answer does not decode; ignored");
                None
            }
        }
    }
}

/// An error answer: not from the cache, so `x-cache: miss`.
fn refusal(mut status: Status, state: CircuitState) -> Status {
    record(&Span::current(), CacheStatus::Miss, state);
    metadata::insert(status.metadata_mut(), CacheStatus::Miss, state);
    status
}

fn answer<T>(message: T, cache: CacheStatus, state: CircuitState) -> Response<T> {
    record(&Span::current(), cache, state);
    let mut response = Response::new(message);
    metadata::insert(response.metadata_mut(), cache, state);
    response
}

/// Puts the outcome on the request's span, where a trace shows it.
fn record(span: &Span, cache: CacheStatus, state: CircuitState) {
    span.set_attribute("cache.status", cache.as_str());
    span.set_attribute("circuit.state", state.as_str());
}

/// Bounds each call of `backend` by `budget`.
///
/// tower's `Timeout` would do, but its boxed error must then be mapped back
/// to a `Status`, and that mapping closure defeats the `Send` inference of
/// the `async_trait` handlers; this is the same thing without a closure.
#[derive(Clone, Debug)]
struct Budget<S> {
    backend: S,
    budget: Duration,
}

impl<S, R> Service<R> for Budget<S>
where
    S: Service<R, Error = Status>,
{
    type Response = S::Response;
    type Error = Status;
    type Future = BudgetFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.backend.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let deadline = Instant::now() + self.budget;
        BudgetFuture {
            call: tokio::time::timeout_at(deadline, self.backend.call(request)),
            deadline,
            budget: self.budget,
        }
    }
}

pin_project! {
    struct BudgetFuture<F> {
        #[pin]
        call: tokio::time::Timeout<F>,
        deadline: Instant,
        budget: Duration,
    }
}

impl<F, T> Future for BudgetFuture<F>
where
    F: Future<Output = Result<T, Status>>,
{
    type Output = Result<T, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let over_budget = || {
            Status::deadline_exceeded(format!(
                "no answer within the gateway's {}ms budget",
                this.budget.as_millis()
            ))
        };
        Poll::Ready(match ready!(this.call.poll(cx)) {
            Ok(Ok(response)) => Ok(response),
            // The backend was told the same deadline and may give up at
            // the same moment, with CANCELLED; but a call that ends after
            // its budget ran out has timed out, whatever the backend said.
            Ok(Err(_)) | Err(_) if Instant::now() >= *this.deadline => Err(over_budget()),
            Ok(Err(status)) => Err(status),
            Err(_elapsed) => Err(over_budget()),
        })
    }
}
