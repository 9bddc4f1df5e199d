//! The caller's deadline: the `grpc-timeout` request header, read, and
//! answered with `DEADLINE_EXCEEDED` when it passes.
//!
//! tonic's server enforces the header too, but answers a deadline that
//! passed with `CANCELLED` ("Timeout expired"). gRPC says
//! `DEADLINE_EXCEEDED`, and callers tell the two apart: `CANCELLED` is a
//! call someone gave up on, and a client whose own timer fired a moment
//! later than the server's would report the server's word, not its own.
//! [`DeadlineLayer`] answers first, with the right code.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// The caller's timeout, if it sent a valid one.
///
/// The format is the gRPC spec's: at most 8 digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`). An invalid header is ignored, as tonic's own server
/// does.
pub fn caller_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// How much earlier than tonic's own timer [`DeadlineLayer`] answers.
///
/// tonic starts its timer a few microseconds before ours, and the timer
/// wheel fires in whole milliseconds: with the same timeout, tonic's could
/// fall one tick earlier and answer `CANCELLED` first. One tick ahead, ours
/// answers first; the caller, whose deadline it is, could not have used an
/// answer in that last millisecond anyway.
const AHEAD_OF_TONIC: Duration = Duration::from_millis(1);

/// Answers a call whose caller's deadline (`grpc-timeout`) passes before
/// its answer with `DEADLINE_EXCEEDED`, and drops the call.
///
/// Put it innermost, so that the trace and metrics layers around it record
/// the code the caller gets.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

/// The service of [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let expiry = caller_timeout(request.headers()).map(|timeout| {
            let deadline = Instant::now() + timeout.saturating_sub(AHEAD_OF_TONIC);
            tokio::time::sleep_until(deadline)
        });
        DeadlineFuture {
            inner: self.inner.call(request),
            expiry,
        }
    }
}

pin_project! {
    /// The response future of [`Deadline`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        expiry: Option<Sleep>,
    }
}

impl<F, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        if let Some(expiry) = this.expiry.as_pin_mut() {
            ready!(expiry.poll(cx));
            let status =
                Status::deadline_exceeded("the caller's deadline passed before the answer");
            return Poll::Ready(Ok(status.into_http()));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        caller_timeout(&headers)
    }

    #[test]
    fn reads_every_unit() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
    }

    #[test]
    fn ignores_what_the_spec_does_not_allow() {
        assert_eq!(caller_timeout(&HeaderMap::new()), None);
        for bad in [
            "",
            "m",
            "10",
            "10x",
            "-5S",
            "+5S",
            "123456789S",
            "1.5S",
            "5 S",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    mod layer {
        use std::convert::Infallible;

        use tower::ServiceExt as _;

        use super::*;

        /// A service that answers `OK` after `delay`.
        fn answering_after(
            delay: Duration,
        ) -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> {
            tower::service_fn(move |_: Request<()>| async move {
                tokio::time::sleep(delay).await;
                Ok::<_, Infallible>(Status::ok("").into_http())
            })
        }

        fn request(timeout: Option<&str>) -> Request<()> {
            let mut request = Request::new(());
            if let Some(timeout) = timeout {
                request
                    .headers_mut()
                    .insert("grpc-timeout", timeout.parse().unwrap());
            }
            request
        }

        fn code(response: &Response<Body>) -> Option<&str> {
            response.headers().get("grpc-status")?.to_str().ok()
        }

        #[tokio::test(start_paused = true)]
        async fn a_passed_deadline_is_deadline_exceeded_not_cancelled() {
            let service = DeadlineLayer.layer(answering_after(Duration::from_secs(10)));
            let started = Instant::now();
            let response = service.oneshot(request(Some("500m"))).await.unwrap();
            assert_eq!(code(&response), Some("4"), "DEADLINE_EXCEEDED");
            assert_eq!(started.elapsed(), Duration::from_millis(499));
        }

        #[tokio::test(start_paused = true)]
        async fn an_answer_within_the_deadline_passes_through() {
            let service = DeadlineLayer.layer(answering_after(Duration::from_millis(100)));
            let response = service.oneshot(request(Some("500m"))).await.unwrap();
            assert_eq!(code(&response), Some("0"));
        }

        #[tokio::test(start_paused = true)]
        async fn without_a_deadline_the_call_takes_what_it_takes() {
            let service = DeadlineLayer.layer(answering_after(Duration::from_secs(3600)));
            let started = Instant::now();
            let response = service.oneshot(request(None)).await.unwrap();
            assert_eq!(code(&response), Some("0"));
            assert_eq!(started.elapsed(), Duration::from_secs(3600));
        }
    }
}
