//! The breaker's behaviour, case by case, through its tower `Service`, with
//! paused time. Each case states its configuration, the calls it makes and
//! the states and counts it expects.

use std::{sync::Arc, time::Duration};

use resilient_catalog::breaker::{
    BreakerConfig, BreakerError, Circuit, CircuitBreaker, CircuitRegistry, CircuitState,
    GrpcFailureCodes, Rejection, WindowCounts,
};
use tokio::sync::Semaphore;
use tonic::{Code, Status};
use tower::{Service, ServiceExt as _, service_fn};

/// What the scripted backend does with one call.
#[derive(Clone)]
struct Call {
    /// `None` answers OK.
    status: Option<Code>,
    /// How long the call takes.
    takes: Duration,
    /// Held until the test lets the call finish, if set.
    gate: Option<Arc<Semaphore>>,
}

fn ok() -> Call {
    Call {
        status: None,
        takes: Duration::ZERO,
        gate: None,
    }
}

fn fail() -> Call {
    Call {
        status: Some(Code::Unavailable),
        ..ok()
    }
}

fn timeout() -> Call {
    Call {
        status: Some(Code::DeadlineExceeded),
        ..ok()
    }
}

fn slow(call: Call, takes: Duration) -> Call {
    Call { takes, ..call }
}

fn gated(call: Call, gate: &Arc<Semaphore>) -> Call {
    Call {
        gate: Some(Arc::clone(gate)),
        ..call
    }
}

type Breaker = CircuitBreaker<
    tower::util::ServiceFn<
        fn(Call) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>,
    >,
    GrpcFailureCodes,
>;

fn backend(call: Call) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Status>> + Send>> {
    Box::pin(async move {
        if let Some(gate) = call.gate {
            gate.acquire().await.expect("the gate stays open").forget();
        }
        tokio::time::sleep(call.takes).await;
        match call.status {
            None => Ok(()),
            Some(code) => Err(Status::new(code, "scripted")),
        }
    })
}

fn breaker(config: BreakerConfig) -> (&'static Circuit, Breaker) {
    let circuit = Circuit::new("/test.v1.Test/Call", config);
    let service = service_fn(backend as fn(Call) -> _);
    (
        circuit,
        CircuitBreaker::new(service, circuit, GrpcFailureCodes::DEFAULT),
    )
}

async fn send(breaker: &mut Breaker, call: Call) -> Result<(), BreakerError<Status>> {
    breaker.ready().await?.call(call).await
}

/// Makes the calls one after the other and returns the rejections.
async fn run(breaker: &mut Breaker, calls: impl IntoIterator<Item = Call>) -> usize {
    let mut rejected = 0;
    for call in calls {
        if let Err(BreakerError::Open(_)) = send(breaker, call).await {
            rejected += 1;
        }
    }
    rejected
}

fn config(volume_threshold: u32) -> BreakerConfig {
    BreakerConfig {
        volume_threshold,
        ..BreakerConfig::default()
    }
}

fn counts(circuit: &'static Circuit) -> WindowCounts {
    circuit.snapshot().counts
}

async fn advance(by: Duration) {
    tokio::time::advance(by).await;
}

const SECOND: Duration = Duration::from_secs(1);

/// Config: volume threshold 0. Calls: one failure. Expect: open.
#[tokio::test(start_paused = true)]
async fn a_single_failure_opens_a_fresh_breaker_with_no_volume_threshold() {
    let (circuit, mut breaker) = breaker(config(0));
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Open);
    assert_eq!(counts(circuit).failures, 1);
}

/// Config: threshold 50%, volume 4. Calls: S S S F (25%), then F (40%),
/// then F (50%). Expect: closed, closed, open: the threshold is reached,
/// not exceeded.
#[tokio::test(start_paused = true)]
async fn exactly_at_the_threshold_opens() {
    let (circuit, mut breaker) = breaker(config(4));
    run(&mut breaker, [ok(), ok(), ok(), fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Open);
    assert_eq!(
        counts(circuit),
        WindowCounts {
            successes: 3,
            failures: 3,
            ..WindowCounts::default()
        }
    );
}

/// Config: threshold 51%, volume 4. Calls: S S F F (50%, just under), then
/// F (60%, just over). Expect: closed, then open.
#[tokio::test(start_paused = true)]
async fn just_under_the_threshold_stays_closed_and_just_over_opens() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        failure_threshold_percent: 51,
        ..config(4)
    });
    run(&mut breaker, [ok(), ok(), fail(), fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Open);
}

/// Config: volume 5. Calls: F F F F (100%, 4 calls), then F. Expect: closed
/// until the fifth call, then open.
#[tokio::test(start_paused = true)]
async fn the_volume_threshold_holds_the_circuit_closed() {
    let (circuit, mut breaker) = breaker(config(5));
    run(&mut breaker, [fail(), fail(), fail(), fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    assert_eq!(counts(circuit).failures, 4);
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Open);
}

/// Config: volume 2, window 10 s in 10 buckets. Calls: F at 0 s, F at 10 s.
/// Expect: the first failure rolled off, so 1 call in the window: closed.
#[tokio::test(start_paused = true)]
async fn the_window_rolls_off_old_failures() {
    let (circuit, mut breaker) = breaker(config(2));
    run(&mut breaker, [fail()]).await;
    advance(9 * SECOND).await;
    assert_eq!(counts(circuit).failures, 1, "still in the window at 9 s");
    advance(SECOND).await;
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    assert_eq!(counts(circuit).failures, 1);
}

/// Config: volume 2, reset timeout 2 s, window 10 s. Calls: F F (open),
/// 2 s later a successful trial (closed), then F. Expect: the old failures
/// are still in the window after the close (the window is not cleared), so
/// 3 failures in 4 calls reopen the circuit at once.
#[tokio::test(start_paused = true)]
async fn an_old_failure_is_still_in_the_window_after_a_close() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        reset_timeout: 2 * SECOND,
        ..config(2)
    });
    run(&mut breaker, [fail(), fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Open);
    advance(2 * SECOND).await;
    run(&mut breaker, [ok()]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    assert_eq!(
        counts(circuit),
        WindowCounts {
            successes: 1,
            failures: 2,
            ..WindowCounts::default()
        }
    );
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Open);
}

/// Config: volume 0. Calls: F (open), then 20 calls while open. Expect: 20
/// rejections, counted apart, and a failure rate still of 100% over 1 call.
#[tokio::test(start_paused = true)]
async fn rejections_do_not_dilute_the_failure_rate() {
    let (circuit, mut breaker) = breaker(config(0));
    run(&mut breaker, [fail()]).await;
    let rejected = run(&mut breaker, (0..20).map(|_| ok())).await;
    assert_eq!(rejected, 20);
    let snapshot = circuit.snapshot();
    assert_eq!(snapshot.counts.rejections, 20);
    assert_eq!(snapshot.counts.calls(), 1);
    assert_eq!(snapshot.failure_rate_percent, 100.0);
}

/// Config: volume 0, 3 trials. Calls: F (open); after the reset timeout, 50
/// callers at once, each held inside the backend. Expect: exactly 3 reach
/// the backend, 47 are short-circuited; when the 3 succeed, closed.
#[tokio::test(start_paused = true)]
async fn exactly_n_trials_under_50_concurrent_callers() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        half_open_trials: 3,
        ..config(0)
    });
    run(&mut breaker, [fail()]).await;
    advance(10 * SECOND).await;

    let gate = Arc::new(Semaphore::new(0));
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let mut breaker = breaker.clone();
            let call = gated(ok(), &gate);
            tokio::spawn(async move { send(&mut breaker, call).await })
        })
        .collect();
    // Let every caller reach the breaker.
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    assert_eq!(circuit.state(), CircuitState::HalfOpen);
    assert_eq!(counts(circuit).short_circuits, 47);

    gate.add_permits(50);
    let mut admitted = 0;
    let mut busy = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(BreakerError::Open(open)) => {
                assert_eq!(open.rejection(), Rejection::HalfOpenBusy);
                busy += 1;
            }
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!((admitted, busy), (3, 47));
    assert_eq!(circuit.state(), CircuitState::Closed);
}

/// Config: volume 0. Calls: F (open); after the reset timeout, a trial
/// whose future is dropped before it completes, then a trial that
/// succeeds. Expect: the dropped trial gave its slot back; closed.
#[tokio::test(start_paused = true)]
async fn a_dropped_trial_future_gives_its_slot_back() {
    let (circuit, mut breaker) = breaker(config(0));
    run(&mut breaker, [fail()]).await;
    advance(10 * SECOND).await;

    let gate = Arc::new(Semaphore::new(0));
    let mut other = breaker.clone();
    let mut dropped = tokio_test::task::spawn(send(&mut other, gated(ok(), &gate)));
    assert!(
        dropped.poll().is_pending(),
        "the trial waits in the backend"
    );
    // Its slot is taken meanwhile.
    assert!(matches!(
        send(&mut breaker, ok()).await,
        Err(BreakerError::Open(open)) if open.rejection() == Rejection::HalfOpenBusy
    ));
    drop(dropped);

    run(&mut breaker, [ok()]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
}

/// Config: volume 0, half-open cap 5 s. Calls: F (open); after the reset
/// timeout, a trial that never completes. Expect: half-open for 5 s, then
/// open again (with a new reset timeout), then half-open once more.
#[tokio::test(start_paused = true)]
async fn half_open_reopens_when_its_trials_never_complete() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        half_open_max_duration: 5 * SECOND,
        ..config(0)
    });
    run(&mut breaker, [fail()]).await;
    advance(10 * SECOND).await;

    let gate = Arc::new(Semaphore::new(0));
    let mut other = breaker.clone();
    let mut stuck = tokio_test::task::spawn(send(&mut other, gated(ok(), &gate)));
    assert!(stuck.poll().is_pending());
    advance(4 * SECOND).await;
    assert_eq!(circuit.state(), CircuitState::HalfOpen);
    advance(SECOND).await;
    assert_eq!(circuit.state(), CircuitState::Open);
    let snapshot = circuit.snapshot();
    assert_eq!(snapshot.state, CircuitState::Open);
    assert_eq!(snapshot.consecutive_opens, 2);
    assert_eq!(snapshot.next_trial_in, Some(10 * SECOND));

    // The stuck trial completing now is late: counted, moves nothing.
    gate.add_permits(1);
    assert!(stuck.poll().is_ready());
    assert_eq!(circuit.state(), CircuitState::Open);
    assert_eq!(counts(circuit).successes, 1);
}

/// Config: volume 0, reset timeout 1 s, multiplier 2, cap 4 s. Calls: F,
/// then a failed trial after each reset timeout, then a successful trial,
/// then F. Expect: open for 1, 2, 4, 4 s; closed; then 1 s again.
#[tokio::test(start_paused = true)]
async fn the_reset_timeout_grows_and_goes_back_to_the_base_on_close() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        reset_timeout: SECOND,
        reset_timeout_multiplier: 2,
        max_reset_timeout: 4 * SECOND,
        ..config(0)
    });
    run(&mut breaker, [fail()]).await;
    for expected in [1, 2, 4, 4] {
        let open = circuit.snapshot();
        assert_eq!(open.state, CircuitState::Open);
        assert_eq!(open.next_trial_in, Some(expected * SECOND));
        advance(expected * SECOND - Duration::from_millis(1)).await;
        assert_eq!(run(&mut breaker, [fail()]).await, 1, "still open");
        advance(Duration::from_millis(1)).await;
        if expected == 4 && open.consecutive_opens == 4 {
            break;
        }
        run(&mut breaker, [fail()]).await; // the failed trial
    }
    run(&mut breaker, [ok()]).await; // a successful trial
    assert_eq!(circuit.state(), CircuitState::Closed);
    assert_eq!(circuit.snapshot().consecutive_opens, 0);

    // 1 success and 4 old failures are in the window: the next failure
    // reopens, with the base reset timeout.
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.snapshot().next_trial_in, Some(SECOND));
}

/// Config: volume 0, slow calls from 1 s. Calls: a success that takes 5 s,
/// started while closed; meanwhile a failure opens the circuit. Expect: the
/// late success is counted (and counted slow) but the circuit stays open.
#[tokio::test(start_paused = true)]
async fn a_late_slow_success_does_not_close_the_circuit() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        slow_call_duration: Some(SECOND),
        ..config(0)
    });
    let late = tokio::spawn({
        let mut breaker = breaker.clone();
        async move { send(&mut breaker, slow(ok(), 5 * SECOND)).await }
    });
    tokio::task::yield_now().await;
    run(&mut breaker, [fail()]).await;
    assert_eq!(circuit.state(), CircuitState::Open);

    late.await.unwrap().expect("the slow call succeeds");
    assert_eq!(circuit.state(), CircuitState::Open);
    let counts = counts(circuit);
    assert_eq!(
        (counts.successes, counts.failures, counts.slow_calls),
        (1, 1, 1)
    );
}

/// Config: volume 4, slow calls from 1 s at 50%. Calls: 2 quick and 2 slow
/// successes. Expect: open, for the slow-call rate, with no failure.
#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_circuit_when_their_rate_reaches_the_threshold() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        slow_call_duration: Some(SECOND),
        slow_call_threshold_percent: 50,
        ..config(4)
    });
    run(&mut breaker, [ok(), ok(), slow(ok(), 2 * SECOND)]).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    run(&mut breaker, [slow(ok(), SECOND)]).await;
    let snapshot = circuit.snapshot();
    assert_eq!(snapshot.state, CircuitState::Open);
    assert_eq!(snapshot.counts.slow_calls, 2);
    assert_eq!(snapshot.failure_rate_percent, 0.0);
    assert_eq!(snapshot.slow_call_rate_percent, 50.0);
}

/// Config: slow-call detection off (the default). Calls: 10 successes of
/// 1 minute each. Expect: nothing counted slow; closed.
#[tokio::test(start_paused = true)]
async fn slow_call_detection_is_off_by_default() {
    let (circuit, mut breaker) = breaker(config(0));
    run(&mut breaker, (0..10).map(|_| slow(ok(), 60 * SECOND))).await;
    assert_eq!(circuit.state(), CircuitState::Closed);
    assert_eq!(counts(circuit).slow_calls, 0);
}

/// Config: volume 0, slow calls from 1 s. Calls: F (open); after the reset
/// timeout a trial that succeeds slowly. Expect: a slow trial is a failed
/// trial: open again.
#[tokio::test(start_paused = true)]
async fn a_slow_trial_reopens_the_circuit() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        slow_call_duration: Some(SECOND),
        ..config(0)
    });
    run(&mut breaker, [fail()]).await;
    advance(10 * SECOND).await;
    run(&mut breaker, [slow(ok(), 2 * SECOND)]).await;
    assert_eq!(circuit.state(), CircuitState::Open);
}

/// Config: defaults. Calls: one with each gRPC code. Expect: UNAVAILABLE,
/// INTERNAL, UNKNOWN and RESOURCE_EXHAUSTED are failures,
/// DEADLINE_EXCEEDED a timeout, every other code a success.
#[tokio::test(start_paused = true)]
async fn each_grpc_code_is_classified() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        volume_threshold: 1000, // never opens here
        ..BreakerConfig::default()
    });
    for number in 1..=16 {
        let call = Call {
            status: Some(Code::from_i32(number)),
            ..ok()
        };
        let _ = send(&mut breaker, call).await;
    }
    run(&mut breaker, [ok()]).await;
    assert_eq!(
        counts(circuit),
        WindowCounts {
            successes: 12, // the 11 caller codes, and OK
            failures: 4,
            timeouts: 1,
            ..WindowCounts::default()
        }
    );
}

/// Config: failure codes DATA_LOSS only. Calls: UNAVAILABLE, DATA_LOSS.
/// Expect: classification follows the configuration.
#[tokio::test(start_paused = true)]
async fn the_failure_codes_are_configurable() {
    let circuit = Circuit::new("/m", config(1000));
    let mut breaker = CircuitBreaker::new(
        service_fn(backend as fn(Call) -> _),
        circuit,
        GrpcFailureCodes::parse("DATA_LOSS").unwrap(),
    );
    for code in [Code::Unavailable, Code::DataLoss] {
        let _ = breaker
            .ready()
            .await
            .unwrap()
            .call(Call {
                status: Some(code),
                ..ok()
            })
            .await;
    }
    let counts = counts(circuit);
    assert_eq!((counts.successes, counts.failures), (1, 1));
}

/// Config: volume 0. Controls: force open (rejects, never tries, counts
/// rejections), force closed (calls go through, window kept), disable
/// (calls go through, nothing counted), metrics only (counted, never
/// opens), reset (closed, window empty).
#[tokio::test(start_paused = true)]
async fn every_admin_control() {
    let (circuit, mut breaker) = breaker(config(0));
    run(&mut breaker, [ok()]).await;

    circuit.force_open();
    assert_eq!(circuit.state(), CircuitState::ForcedOpen);
    match send(&mut breaker, ok()).await {
        Err(BreakerError::Open(open)) => {
            assert_eq!(open.rejection(), Rejection::ForcedOpen);
            assert_eq!(open.retry_after(), None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(counts(circuit).rejections, 1);
    advance(60 * SECOND).await;
    assert_eq!(
        circuit.state(),
        CircuitState::ForcedOpen,
        "no trial is made"
    );

    run(&mut breaker, [ok()]).await; // rejected, before the close
    circuit.force_closed();
    assert_eq!(circuit.state(), CircuitState::Closed);
    run(&mut breaker, [ok()]).await;
    assert_eq!(counts(circuit).successes, 1);

    circuit.disable();
    assert_eq!(circuit.state(), CircuitState::Disabled);
    assert_eq!(run(&mut breaker, [fail(), fail(), timeout()]).await, 0);
    assert_eq!(circuit.state(), CircuitState::Disabled);
    assert_eq!(
        counts(circuit).calls(),
        1,
        "a disabled circuit counts nothing"
    );

    circuit.metrics_only();
    assert_eq!(circuit.state(), CircuitState::MetricsOnly);
    assert_eq!(run(&mut breaker, (0..10).map(|_| fail())).await, 0);
    assert_eq!(circuit.state(), CircuitState::MetricsOnly, "it never opens");
    assert_eq!(counts(circuit).failures, 10);

    circuit.force_open();
    circuit.reset();
    let snapshot = circuit.snapshot();
    assert_eq!(snapshot.state, CircuitState::Closed);
    assert_eq!(snapshot.counts, WindowCounts::default());
    assert_eq!(snapshot.consecutive_opens, 0);
    run(&mut breaker, [fail()]).await;
    assert_eq!(
        circuit.state(),
        CircuitState::Open,
        "it trips again after a reset"
    );
}

/// Config: 2 circuits at most. Names: /a, /b, then /c and /d. Expect: /a and
/// /b have circuits of their own; /c and /d share `_other`, and trip
/// together.
#[tokio::test(start_paused = true)]
async fn the_registry_is_bounded() {
    let registry = CircuitRegistry::new(config(0), 2).unwrap();
    let a = registry.circuit("/a");
    let b = registry.circuit("/b");
    let c = registry.circuit("/c");
    let d = registry.circuit("/d");
    assert_eq!((a.name(), b.name()), ("/a", "/b"));
    assert_eq!(c.name(), CircuitRegistry::OVERFLOW);
    assert!(std::ptr::eq(c, d));

    c.try_acquire()
        .unwrap()
        .record(resilient_catalog::breaker::Outcome::Failure);
    assert_eq!(d.state(), CircuitState::Open);
    assert_eq!(a.state(), CircuitState::Closed);
    let names: Vec<_> = registry
        .circuits()
        .iter()
        .map(|circuit| circuit.name().to_owned())
        .collect();
    assert_eq!(names, ["/a", "/b", CircuitRegistry::OVERFLOW]);
}

/// Config: volume 0, 3 trials, reset timeout 50 ms. Calls: F (open); after
/// the reset timeout, 50 tasks on 4 worker threads ask for a permit at the
/// same moment. Expect: exactly 3 trial permits, whatever the interleaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_n_trials_when_50_threads_race() {
    let circuit = Circuit::new(
        "/m",
        BreakerConfig {
            half_open_trials: 3,
            reset_timeout: Duration::from_millis(50),
            ..config(0)
        },
    );
    circuit
        .try_acquire()
        .unwrap()
        .record(resilient_catalog::breaker::Outcome::Failure);
    tokio::time::sleep(Duration::from_millis(60)).await;

    let start = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (circuit, start) = (circuit, Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                // Keep the permit: a trial must not settle before all ask.
                circuit.try_acquire().ok()
            })
        })
        .collect();
    let mut permits = Vec::new();
    for racer in racers {
        permits.extend(racer.await.unwrap());
    }
    assert_eq!(permits.len(), 3);
    assert!(permits.iter().all(|permit| permit.is_trial()));
    assert_eq!(circuit.snapshot().counts.short_circuits, 47);
}

/// Config: volume 0, 2 trials. Calls: F (open); after the reset timeout,
/// trials A and B; A fails, then B succeeds. Expect: A's failure reopens
/// the circuit; B's success is late and moves nothing.
#[tokio::test(start_paused = true)]
async fn any_failed_trial_reopens_even_with_others_in_flight() {
    let (circuit, mut breaker) = breaker(BreakerConfig {
        half_open_trials: 2,
        ..config(0)
    });
    run(&mut breaker, [fail()]).await;
    advance(10 * SECOND).await;

    let trial_b = tokio::spawn({
        let mut breaker = breaker.clone();
        async move { send(&mut breaker, slow(ok(), SECOND)).await }
    });
    tokio::task::yield_now().await;
    run(&mut breaker, [fail()]).await; // trial A
    assert_eq!(circuit.state(), CircuitState::Open);
    trial_b.await.unwrap().expect("B succeeds");
    assert_eq!(circuit.state(), CircuitState::Open);
}
