//! The state machine of one circuit: closed, open, half-open, driven by the
//! outcomes of the calls it admits.

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

use super::{BreakerConfig, CircuitOpen, WindowCounts, window::Window};

/// The state of a circuit, as callers and operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through and their outcomes are counted.
    Closed,
    /// Calls are rejected without reaching the service.
    Open,
    /// One trial call may go through; its outcome closes or reopens the
    /// circuit.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half_open`: the value of the `x-circuit-state`
    /// metadata and of log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an admitted call ended, as the classifier judged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The service did its job (this includes the caller's own errors).
    Success,
    /// The service failed, timed out or could not be reached.
    Failure,
}

/// What a circuit looks like at one moment, for operators.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitSnapshot {
    /// The circuit's name.
    pub name: Arc<str>,
    /// Its state.
    pub state: CircuitState,
    /// The counts over its rolling window.
    pub counts: WindowCounts,
    /// The failure rate over the window, in percent.
    pub failure_rate_percent: f64,
    /// While open, the time until a trial call is admitted.
    pub retry_after: Option<Duration>,
}

/// One circuit breaker's state and counts.
///
/// Every decision takes a short lock; nothing is awaited while it is held.
#[derive(Debug)]
pub struct Circuit {
    name: Arc<str>,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Bumped on every transition. A trial's outcome only counts for the
    /// half-open period that admitted it.
    generation: u64,
    window: Window,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

impl State {
    fn public(self) -> CircuitState {
        match self {
            State::Closed => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

/// A state change, logged once the lock is released.
struct Transition {
    from: CircuitState,
    to: CircuitState,
    counts: WindowCounts,
}

impl Circuit {
    /// A closed circuit with an empty window.
    ///
    /// # Panics
    ///
    /// If `config` does not [validate](BreakerConfig::validate): a broken
    /// configuration is a programming error, and binaries validate their
    /// flags before they get here.
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Self {
        if let Err(error) = config.validate() {
            panic!("invalid breaker configuration: {error}");
        }
        let window = Window::new(&config, Instant::now());
        Self {
            name: name.into(),
            config,
            inner: Mutex::new(Inner {
                state: State::Closed,
                generation: 0,
                window,
            }),
        }
    }

    /// The circuit's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Asks to make a call: a [`Permit`] to call the service, or
    /// [`CircuitOpen`] when the call must not be made.
    ///
    /// In half-open state exactly one caller gets the trial permit; the
    /// others are rejected until its outcome is known.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, CircuitOpen> {
        let now = Instant::now();
        let mut inner = self.lock();
        let transition = self.refresh(&mut inner, now);
        let decision = match inner.state {
            State::Closed => Ok(PermitKind::Normal),
            State::HalfOpen {
                trial_in_flight: false,
            } => {
                inner.state = State::HalfOpen {
                    trial_in_flight: true,
                };
                Ok(PermitKind::Trial {
                    generation: inner.generation,
                })
            }
            State::Open { until } => {
                inner.window.current(now).rejections += 1;
                Err(until - now)
            }
            State::HalfOpen {
                trial_in_flight: true,
            } => {
                // The trial decides soon; if it fails, the circuit stays
                // open for a whole reset timeout.
                inner.window.current(now).rejections += 1;
                Err(self.config.reset_timeout)
            }
        };
        drop(inner);
        self.log(transition);
        match decision {
            Ok(kind) => Ok(Permit {
                circuit: Arc::clone(self),
                kind,
                settled: false,
            }),
            Err(retry_after) => Err(CircuitOpen::new(Arc::clone(&self.name), retry_after)),
        }
    }

    /// The state now.
    pub fn state(&self) -> CircuitState {
        let mut inner = self.lock();
        let transition = self.refresh(&mut inner, Instant::now());
        let state = inner.state.public();
        drop(inner);
        self.log(transition);
        state
    }

    /// The state, counts and timings now.
    pub fn snapshot(&self) -> CircuitSnapshot {
        let now = Instant::now();
        let mut inner = self.lock();
        let transition = self.refresh(&mut inner, now);
        let counts = inner.window.totals(now);
        let snapshot = CircuitSnapshot {
            name: Arc::clone(&self.name),
            state: inner.state.public(),
            counts,
            failure_rate_percent: counts.failure_rate_percent(),
            retry_after: match inner.state {
                State::Open { until } => Some(until - now),
                _ => None,
            },
        };
        drop(inner);
        self.log(transition);
        snapshot
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code panics while holding the lock; if some did, the counts
        // would still be coherent, so a poisoned lock is used as it is.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves an open circuit whose reset timeout has passed to half-open.
    fn refresh(&self, inner: &mut Inner, now: Instant) -> Option<Transition> {
        match inner.state {
            State::Open { until } if now >= until => Some(self.transition(
                inner,
                State::HalfOpen {
                    trial_in_flight: false,
                },
                now,
            )),
            _ => None,
        }
    }

    fn transition(&self, inner: &mut Inner, to: State, now: Instant) -> Transition {
        let from = inner.state.public();
        inner.state = to;
        inner.generation += 1;
        Transition {
            from,
            to: to.public(),
            counts: inner.window.totals(now),
        }
    }

    /// Records the outcome of an admitted call and moves the state if it
    /// must.
    fn settle(&self, kind: PermitKind, outcome: Outcome) {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut transition = self.refresh(&mut inner, now);
        let current = inner.window.current(now);
        match outcome {
            Outcome::Success => current.successes += 1,
            Outcome::Failure => current.failures += 1,
        }

        let open = State::Open {
            until: now + self.config.reset_timeout,
        };
        match (kind, inner.state) {
            (PermitKind::Trial { generation }, State::HalfOpen { .. })
                if generation == inner.generation =>
            {
                let to = match outcome {
                    Outcome::Success => State::Closed,
                    Outcome::Failure => open,
                };
                transition = Some(self.transition(&mut inner, to, now));
            }
            (_, State::Closed) => {
                let counts = inner.window.totals(now);
                if counts.calls() >= u64::from(self.config.volume_threshold)
                    && counts.failures * 100
                        >= u64::from(self.config.failure_threshold_percent) * counts.calls()
                    && counts.failures > 0
                {
                    transition = Some(self.transition(&mut inner, open, now));
                }
            }
            // A late outcome: a call admitted before the circuit opened, or
            // a trial of an earlier half-open period. It is counted, but it
            // does not move the state.
            _ => {}
        }
        drop(inner);
        self.log(transition);
    }

    /// Gives back the trial slot of a call that ended with no outcome (its
    /// future was dropped), so that the next caller can make the trial.
    fn release_trial(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation
            && matches!(
                inner.state,
                State::HalfOpen {
                    trial_in_flight: true
                }
            )
        {
            inner.state = State::HalfOpen {
                trial_in_flight: false,
            };
        }
    }

    fn log(&self, transition: Option<Transition>) {
        let Some(Transition { from, to, counts }) = transition else {
            return;
        };
        let circuit = &*self.name;
        let failure_rate_percent = counts.failure_rate_percent();
        match to {
            CircuitState::Open => tracing::warn!(
                circuit,
                %from,
                %to,
                successes = counts.successes,
                failures = counts.failures,
                failure_rate_percent,
                reset_timeout_ms = self.config.reset_timeout.as_millis() as u64,
                "circuit opened; calls are rejected until a trial call succeeds"
            ),
            CircuitState::HalfOpen => tracing::info!(
                circuit,
                %from,
                %to,
                "circuit half-open; the next call is a trial"
            ),
            CircuitState::Closed => tracing::info!(
                circuit,
                %from,
                %to,
                "circuit closed; the trial call succeeded"
            ),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum PermitKind {
    Normal,
    Trial { generation: u64 },
}

/// The right to make one call through a circuit. Report how it ended with
/// [`Permit::record`]; a permit dropped without an outcome (a cancelled
/// call) counts nothing, and a trial permit gives its slot back.
#[derive(Debug)]
#[must_use = "a permit records nothing unless its outcome is recorded"]
pub struct Permit {
    circuit: Arc<Circuit>,
    kind: PermitKind,
    settled: bool,
}

impl Permit {
    /// Records the call's outcome on the circuit.
    pub fn record(mut self, outcome: Outcome) {
        self.settled = true;
        self.circuit.settle(self.kind, outcome);
    }

    /// Whether this is the half-open trial call.
    pub fn is_trial(&self) -> bool {
        matches!(self.kind, PermitKind::Trial { .. })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let (false, PermitKind::Trial { generation }) = (self.settled, self.kind) {
            self.circuit.release_trial(generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit(volume_threshold: u32) -> Arc<Circuit> {
        Arc::new(Circuit::new(
            "test",
            BreakerConfig {
                failure_threshold_percent: 50,
                volume_threshold,
                reset_timeout: Duration::from_secs(10),
                window: Duration::from_secs(10),
                buckets: 10,
            },
        ))
    }

    fn call(circuit: &Arc<Circuit>, outcome: Outcome) {
        circuit.try_acquire().expect("admitted").record(outcome);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_when_the_rate_reaches_the_threshold_with_enough_volume() {
        let circuit = circuit(4);
        call(&circuit, Outcome::Failure);
        call(&circuit, Outcome::Failure);
        call(&circuit, Outcome::Failure);
        // Three calls: under the volume threshold, so still closed.
        assert_eq!(circuit.state(), CircuitState::Closed);
        // Four calls, 3 failures: 75% >= 50%.
        call(&circuit, Outcome::Success);
        assert_eq!(circuit.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_at_the_threshold_opens_and_just_under_does_not() {
        let circuit = circuit(4);
        for outcome in [Outcome::Success, Outcome::Success, Outcome::Success] {
            call(&circuit, outcome);
        }
        call(&circuit, Outcome::Failure);
        // 1 in 4 = 25%.
        assert_eq!(circuit.state(), CircuitState::Closed);
        call(&circuit, Outcome::Failure);
        // 2 in 5 = 40%.
        assert_eq!(circuit.state(), CircuitState::Closed);
        call(&circuit, Outcome::Failure);
        // 3 in 6 = 50%: the threshold is reached.
        assert_eq!(circuit.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_failure_opens_with_no_volume_threshold() {
        let circuit = circuit(0);
        call(&circuit, Outcome::Failure);
        assert_eq!(circuit.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn open_rejects_and_counts_rejections_apart() {
        let circuit = circuit(0);
        call(&circuit, Outcome::Failure);
        tokio::time::advance(Duration::from_secs(3)).await;
        let open = circuit.try_acquire().unwrap_err();
        assert_eq!(open.retry_after(), Duration::from_secs(7));
        let snapshot = circuit.snapshot();
        assert_eq!(snapshot.counts.rejections, 1);
        assert_eq!(snapshot.failure_rate_percent, 100.0);
        assert_eq!(snapshot.retry_after, Some(Duration::from_secs(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn one_trial_after_the_reset_timeout_and_success_closes() {
        let circuit = circuit(0);
        call(&circuit, Outcome::Failure);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(circuit.state(), CircuitState::HalfOpen);

        let trial = circuit.try_acquire().expect("the trial is admitted");
        assert!(trial.is_trial());
        // Only one trial at a time.
        assert!(circuit.try_acquire().is_err());
        trial.record(Outcome::Success);
        assert_eq!(circuit.state(), CircuitState::Closed);
        assert!(!circuit.try_acquire().unwrap().is_trial());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens_for_another_reset_timeout() {
        let circuit = circuit(0);
        call(&circuit, Outcome::Failure);
        tokio::time::advance(Duration::from_secs(10)).await;
        circuit.try_acquire().unwrap().record(Outcome::Failure);
        assert_eq!(circuit.state(), CircuitState::Open);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(circuit.state(), CircuitState::Open);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(circuit.state(), CircuitState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_gives_its_slot_back() {
        let circuit = circuit(0);
        call(&circuit, Outcome::Failure);
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(circuit.try_acquire().unwrap());
        assert_eq!(circuit.state(), CircuitState::HalfOpen);
        assert!(circuit.try_acquire().unwrap().is_trial());
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_success_does_not_close_an_open_circuit() {
        let circuit = circuit(0);
        let slow = circuit.try_acquire().unwrap();
        call(&circuit, Outcome::Failure);
        assert_eq!(circuit.state(), CircuitState::Open);
        slow.record(Outcome::Success);
        assert_eq!(circuit.state(), CircuitState::Open);
        assert_eq!(circuit.snapshot().counts.successes, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn old_failures_roll_off_the_window() {
        let circuit = circuit(2);
        call(&circuit, Outcome::Failure);
        tokio::time::advance(Duration::from_secs(10)).await;
        // The first failure has expired: 1 failure, 1 call, under volume.
        call(&circuit, Outcome::Failure);
        assert_eq!(circuit.state(), CircuitState::Closed);
        assert_eq!(circuit.snapshot().counts.failures, 1);
    }
}
