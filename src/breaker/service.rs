//! The breaker service: asks the circuit before each call and tells it how
//! the call ended.

use std::task::{Context, Poll};

use tower::Service;

use super::{BreakerError, Circuit, Classify, ResponseFuture};

/// A service guarded by a [`Circuit`].
///
/// While the circuit is open, calls fail at once with
/// [`BreakerError::Open`] and the inner service is not called. Calls that
/// are admitted are judged by the classifier when they complete; a call
/// whose future is dropped first counts nothing.
#[derive(Clone, Debug)]
pub struct CircuitBreaker<S, C> {
    inner: S,
    circuit: &'static Circuit,
    classifier: C,
}

impl<S, C> CircuitBreaker<S, C> {
    /// Guards `inner` with `circuit`, judging outcomes with `classifier`.
    pub fn new(inner: S, circuit: &'static Circuit, classifier: C) -> Self {
        Self {
            inner,
            circuit,
            classifier,
        }
    }

    /// The circuit this breaker reports to.
    pub fn circuit(&self) -> &'static Circuit {
        self.circuit
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Request> Service<Request> for CircuitBreaker<S, C>
where
    S: Service<Request>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.circuit.try_acquire() {
            Ok(permit) => {
                ResponseFuture::admitted(self.inner.call(request), permit, self.classifier.clone())
            }
            Err(open) => ResponseFuture::rejected(open),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_test::assert_pending;
    use tonic::Status;
    use tower::{ServiceExt as _, service_fn};
    use tower_test::mock;

    use super::*;
    use crate::breaker::{BreakerConfig, CircuitState, GrpcFailureCodes};

    fn circuit() -> &'static Circuit {
        Circuit::new(
            "/test.v1.Test/Call",
            BreakerConfig {
                volume_threshold: 2,
                ..BreakerConfig::default()
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn rejects_without_calling_the_service_while_open() {
        let circuit = circuit();
        let (service, mut handle) = mock::pair::<&str, &str>();
        let mut breaker =
            CircuitBreaker::new(service, circuit, |result: &Result<&str, _>| match result {
                Ok(_) => crate::breaker::Outcome::Success,
                Err(_) => crate::breaker::Outcome::Failure,
            });

        for _ in 0..2 {
            handle.allow(1);
            let call = breaker.ready().await.unwrap().call("hello");
            let (_, reply) = handle.next_request().await.unwrap();
            reply.send_error("backend down");
            assert!(matches!(call.await, Err(BreakerError::Inner(_))));
        }
        assert_eq!(circuit.state(), CircuitState::Open);

        handle.allow(1);
        let error = breaker
            .ready()
            .await
            .unwrap()
            .call("hello")
            .await
            .unwrap_err();
        let BreakerError::Open(open) = error else {
            panic!("expected a rejection, got {error}");
        };
        assert_eq!(open.retry_after(), Some(Duration::from_secs(10)));
        // The service never saw the third call.
        assert_pending!(tokio_test::task::spawn(handle.next_request()).poll());
    }

    #[tokio::test(start_paused = true)]
    async fn the_callers_errors_do_not_trip_the_circuit() {
        let circuit = circuit();
        let service =
            service_fn(|_: ()| async { Err::<(), _>(Status::not_found("no such product")) });
        let mut breaker = CircuitBreaker::new(service, circuit, GrpcFailureCodes::DEFAULT);
        for _ in 0..10 {
            let error = breaker.ready().await.unwrap().call(()).await.unwrap_err();
            assert!(
                matches!(error, BreakerError::Inner(status) if status.code() == tonic::Code::NotFound)
            );
        }
        assert_eq!(circuit.state(), CircuitState::Closed);
        assert_eq!(circuit.snapshot().counts.successes, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_call_counts_nothing() {
        let circuit = circuit();
        let (service, mut handle) = mock::pair::<(), ()>();
        let mut breaker = CircuitBreaker::new(service, circuit, |_: &Result<(), _>| {
            crate::breaker::Outcome::Failure
        });
        handle.allow(1);
        let mut call = tokio_test::task::spawn(breaker.ready().await.unwrap().call(()));
        assert_pending!(call.poll());
        drop(call);
        assert_eq!(circuit.snapshot().counts, Default::default());
    }
}
