//! A call through a closed circuit allocates nothing, and neither does a
//! rejection by an open one: the allocator aborts the test if they do.
//! (A test binary of its own, because it replaces the global allocator.)

use std::future::ready;

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use resilient_catalog::breaker::{BreakerConfig, BreakerError, Circuit, CircuitBreaker, Outcome};
use tower::{Service, service_fn};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

fn classify(result: &Result<(), ()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Success,
        Err(()) => Outcome::Failure,
    }
}

/// Polls a future that is ready at once (every future here is).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the no-op service is always ready"),
    }
}

#[test]
fn closed_calls_and_rejections_do_not_allocate() {
    let circuit = Circuit::new(
        "/no-alloc",
        BreakerConfig {
            volume_threshold: 1_000,
            ..BreakerConfig::default()
        },
    );
    let mut breaker = CircuitBreaker::new(
        service_fn(|fail: bool| ready(if fail { Err(()) } else { Ok(()) })),
        circuit,
        classify as fn(&_) -> _,
    );
    // The first call of a thread takes its stripe of the window.
    now(breaker.call(false)).unwrap();

    assert_no_alloc(|| {
        for _ in 0..10_000 {
            now(breaker.call(false)).unwrap();
        }
    });

    circuit.force_open();
    assert_no_alloc(|| {
        for _ in 0..10_000 {
            assert!(matches!(
                now(breaker.call(false)),
                Err(BreakerError::Open(_))
            ));
        }
    });
    assert_eq!(circuit.snapshot().counts.successes, 10_001);
}
