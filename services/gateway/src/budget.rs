//! The gateway's budget for one backend call: a backend that uses it all
//! up has failed, with `DEADLINE_EXCEEDED`.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tonic::Status;
use tower::Service;

/// Bounds each call of `backend` by `budget`.
///
/// tower's `Timeout` would do, but its boxed error must then be mapped back
/// to a `Status`, and that mapping closure defeats the `Send` inference of
/// the `async_trait` handlers; this is the same thing without a closure.
#[derive(Clone, Debug)]
pub(crate) struct Budget<S> {
    pub(crate) backend: S,
    pub(crate) budget: Duration,
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
    pub(crate) struct BudgetFuture<F> {
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
