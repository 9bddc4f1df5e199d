//! What the benchmarks share: the no-op service that every breaker wraps,
//! and the loops that drive it on one thread or two.

#![allow(clippy::disallowed_types)] // wall-clock measurement: std's Instant is right here

pub mod layers;

use std::{
    future::{Ready, ready},
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use tower::{Service, ServiceExt as _, service_fn, util::ServiceFn};

/// The error of the no-op service, when asked to fail.
#[derive(Debug)]
pub struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed on purpose")
    }
}

impl std::error::Error for Failed {}

/// The service every breaker wraps: answers at once, with an error when
/// the request is `true`.
pub type Noop = ServiceFn<fn(bool) -> Ready<Result<(), Failed>>>;

/// A new no-op service.
pub fn noop() -> Noop {
    fn answer(fail: bool) -> Ready<Result<(), Failed>> {
        ready(if fail { Err(Failed) } else { Ok(()) })
    }
    service_fn(answer as fn(bool) -> _)
}

/// One call through something under test.
pub trait Subject: Clone + Send + 'static {
    /// Makes one call; whether it reached the no-op service does not
    /// matter to the measurement, only that it completed.
    fn call(&mut self, fail: bool) -> impl Future<Output = ()>;

    /// Whether its breaker is open, so that a benchmark of rejections can
    /// check it measures rejections.
    fn is_open(&self) -> bool;
}

/// Calls a tower service once.
async fn call_tower<S: Service<bool>>(service: &mut S, fail: bool) {
    if let Ok(service) = service.ready().await {
        let _ = service.call(fail).await;
    }
}

/// The bare no-op service: the baseline.
#[derive(Clone)]
pub struct Baseline(pub Noop);

impl Subject for Baseline {
    async fn call(&mut self, fail: bool) {
        call_tower(&mut self.0, fail).await;
    }

    fn is_open(&self) -> bool {
        false
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// The wall time of `iters` calls on this thread.
pub fn one_thread<S: Subject>(subject: &S, iters: u64) -> Duration {
    let mut subject = subject.clone();
    runtime().block_on(async move {
        let start = Instant::now();
        for _ in 0..iters {
            subject.call(false).await;
        }
        start.elapsed()
    })
}

/// The wall time of `iters` calls made by `threads` threads at once, each
/// with its own clone of `subject` (so they share its breaker state). The
/// time per call it gives is the inverse of the throughput.
pub fn threads<S: Subject>(subject: &S, threads: u64, iters: u64) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let start = Arc::new(Barrier::new(threads as usize + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (mut subject, start) = (subject.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let runtime = runtime();
                start.wait();
                runtime.block_on(async move {
                    for _ in 0..per_thread {
                        subject.call(false).await;
                    }
                });
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for worker in workers {
        worker.join().expect("a worker");
    }
    began.elapsed()
}

/// Trips a subject open by failing calls through it, inside a runtime.
///
/// # Panics
///
/// If it is not open after `failures` failed calls.
pub fn trip<S: Subject>(subject: &S, failures: u32) {
    let mut subject = subject.clone();
    runtime().block_on(async move {
        for _ in 0..failures {
            subject.call(true).await;
        }
        assert!(subject.is_open(), "the subject did not open");
    });
}

/// The classifier of our breaker for the no-op service.
pub fn classify(result: &Result<(), Failed>) -> resilient_catalog::breaker::Outcome {
    match result {
        Ok(()) => resilient_catalog::breaker::Outcome::Success,
        Err(_) => resilient_catalog::breaker::Outcome::Failure,
    }
}

/// How our breaker judges the no-op service's results.
type Classifier = fn(&Result<(), Failed>) -> resilient_catalog::breaker::Outcome;

/// Our breaker around the no-op service.
#[derive(Clone)]
pub struct Ours(resilient_catalog::breaker::CircuitBreaker<Noop, Classifier>);

impl Subject for Ours {
    async fn call(&mut self, fail: bool) {
        call_tower(&mut self.0, fail).await;
    }

    fn is_open(&self) -> bool {
        self.0.circuit().state() == resilient_catalog::breaker::CircuitState::Open
    }
}

/// Our breaker, closed, set to open on the first failure and then stay
/// open for an hour.
pub fn ours() -> Ours {
    use resilient_catalog::breaker::{BreakerConfig, Circuit, CircuitBreaker};
    let circuit = Circuit::new(
        "/bench",
        BreakerConfig {
            volume_threshold: 1,
            reset_timeout: Duration::from_secs(3600),
            max_reset_timeout: Duration::from_secs(3600),
            ..BreakerConfig::default()
        },
    );
    Ours(CircuitBreaker::new(
        noop(),
        circuit,
        classify as fn(&_) -> _,
    ))
}

/// tower-resilience-circuitbreaker around the no-op service.
#[derive(Clone)]
pub struct TowerResilience {
    service: tower_resilience_circuitbreaker::CircuitBreaker<
        Noop,
        tower_resilience_circuitbreaker::DefaultClassifier,
    >,
    handle: tower_resilience_circuitbreaker::CircuitBreakerHandle,
}

impl Subject for TowerResilience {
    async fn call(&mut self, fail: bool) {
        call_tower(&mut self.service, fail).await;
    }

    fn is_open(&self) -> bool {
        self.handle.is_open()
    }
}

/// tower-resilience-circuitbreaker with a time-based window like ours (10
/// s), set to open on the first failure (50% over at least 1 call) and then
/// stay open for an hour.
pub fn tower_resilience() -> TowerResilience {
    let (layer, handle) = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .sliding_window_type(tower_resilience_circuitbreaker::SlidingWindowType::TimeBased)
        .sliding_window_duration(Duration::from_secs(10))
        .failure_rate_threshold(0.5)
        .minimum_number_of_calls(1)
        .wait_duration_in_open(Duration::from_secs(3600))
        .build_with_handle()
        .expect("a valid configuration");
    TowerResilience {
        service: tower::Layer::layer(&layer, noop()),
        handle,
    }
}

type FailsafeBreaker = failsafe::StateMachine<
    failsafe::failure_policy::OrElse<
        failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::Constant>,
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    >,
    (),
>;

/// failsafe, which wraps futures rather than services, around the no-op
/// service's futures.
#[derive(Clone)]
pub struct Failsafe {
    breaker: FailsafeBreaker,
    service: Noop,
}

impl Subject for Failsafe {
    async fn call(&mut self, fail: bool) {
        use failsafe::futures::CircuitBreaker as _;
        let _ = self.breaker.call(self.service.call(fail)).await;
    }

    fn is_open(&self) -> bool {
        !self.breaker.is_call_permitted()
    }
}

/// failsafe with the shape of its default policy: a success rate over a
/// time window (the part comparable to ours: 50% over 10 s, at least 1
/// request), or else consecutive failures (here 1, so that it opens on the
/// first failure), then open for an hour.
pub fn failsafe() -> Failsafe {
    use failsafe::{backoff, failure_policy, failure_policy::FailurePolicy as _};
    let open_for = || backoff::constant(Duration::from_secs(3600));
    let policy =
        failure_policy::success_rate_over_time_window(0.5, 1, Duration::from_secs(10), open_for())
            .or_else(failure_policy::consecutive_failures(1, open_for()));
    Failsafe {
        breaker: failsafe::Config::new().failure_policy(policy).build(),
        service: noop(),
    }
}
