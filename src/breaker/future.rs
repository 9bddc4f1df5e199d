//! The response future of [`CircuitBreaker`](super::CircuitBreaker).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;

use super::{BreakerError, CircuitOpen, Classify, Permit};

pin_project! {
    /// Either the inner call, whose outcome is recorded when it completes,
    /// or a rejection that is ready at once.
    #[project = Projection]
    #[allow(missing_docs)] // pin-project-lite takes no docs on enum fields

    pub enum ResponseFuture<F, C> {
        /// The circuit admitted the call.
        Admitted {
            #[pin]
            future: F,
            // Taken when the outcome is recorded. Dropped with the future
            // when the call is cancelled, which counts nothing.
            permit: Option<Permit>,
            classifier: C,
        },
        /// The circuit rejected the call.
        Rejected {
            open: Option<CircuitOpen>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn admitted(future: F, permit: Permit, classifier: C) -> Self {
        ResponseFuture::Admitted {
            future,
            permit: Some(permit),
            classifier,
        }
    }

    pub(crate) fn rejected(open: CircuitOpen) -> Self {
        ResponseFuture::Rejected { open: Some(open) }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, BreakerError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projection::Admitted {
                future,
                permit,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record(classifier.classify(&result));
                }
                Poll::Ready(result.map_err(BreakerError::Inner))
            }
            Projection::Rejected { open } => Poll::Ready(Err(BreakerError::Open(
                open.take().expect("polled after completion"),
            ))),
        }
    }
}
