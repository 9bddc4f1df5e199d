//! One circuit: its state machine, its rolling window, and the permits that
//! tie each admitted call to them.
//!
//! The data path and the state machine are apart, as in linkerd2-proxy's
//! breaker. A call through a closed circuit reads one atomic to be
//! admitted and, when it ends, adds to its thread's stripe of the window;
//! no lock, no allocation. Only what changes the state takes the lock: a
//! failure that may trip the circuit, the trials of half-open, an operator.

use std::{
    fmt,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU8, AtomicU64, Ordering::Acquire, Ordering::Release},
    },
    time::Duration,
};

use tokio::time::Instant;

use super::{
    BreakerConfig, CircuitOpen, WindowCounts,
    error::Rejection,
    window::{Tally, Window},
};

/// The state of a circuit, as callers and operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through and their outcomes are counted.
    Closed,
    /// Calls are rejected without reaching the service until the reset
    /// timeout has passed.
    Open,
    /// A few trial calls go through; their outcomes close or reopen the
    /// circuit.
    HalfOpen,
    /// An operator opened the circuit: every call is rejected until an
    /// operator changes it.
    ForcedOpen,
    /// An operator turned the circuit off: every call goes through and
    /// nothing is counted.
    Disabled,
    /// An operator set the circuit to count without ever opening.
    MetricsOnly,
}

impl CircuitState {
    /// Every state, in the order above.
    pub const ALL: [CircuitState; 6] = [
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
        CircuitState::ForcedOpen,
        CircuitState::Disabled,
        CircuitState::MetricsOnly,
    ];

    /// The name used in the `x-circuit-state` metadata and log fields:
    /// `closed`, `open`, `half_open`, `forced_open`, `disabled` or
    /// `metrics_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::ForcedOpen => "forced_open",
            CircuitState::Disabled => "disabled",
            CircuitState::MetricsOnly => "metrics_only",
        }
    }

    fn from_u8(state: u8) -> Self {
        match state {
            CLOSED => CircuitState::Closed,
            OPEN => CircuitState::Open,
            HALF_OPEN => CircuitState::HalfOpen,
            FORCED_OPEN => CircuitState::ForcedOpen,
            DISABLED => CircuitState::Disabled,
            _ => CircuitState::MetricsOnly,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
const FORCED_OPEN: u8 = 3;
const DISABLED: u8 = 4;
const METRICS_ONLY: u8 = 5;

/// How an admitted call ended, as the classifier judged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The service did its job (this includes the caller's own errors).
    Success,
    /// The service failed or could not be reached.
    Failure,
    /// The call ran out of time. Counted apart, and as a failure in the
    /// failure rate.
    Timeout,
}

/// What a circuit looks like at one moment, for operators.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitSnapshot {
    /// The circuit's name.
    pub name: &'static str,
    /// Its state.
    pub state: CircuitState,
    /// How long it has been in that state.
    pub time_in_state: Duration,
    /// The counts over its rolling window.
    pub counts: WindowCounts,
    /// (failures + timeouts) / calls over the window, in percent.
    pub failure_rate_percent: f64,
    /// slow calls / calls over the window, in percent.
    pub slow_call_rate_percent: f64,
    /// While open: the time until trial calls are admitted.
    pub next_trial_in: Option<Duration>,
    /// How many times it opened with no close between: the reset timeout
    /// grows with it.
    pub consecutive_opens: u32,
    /// The reset timeout of the next (or current) opening.
    pub reset_timeout: Duration,
}

/// Why a circuit changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    FailureRate,
    SlowCallRate,
    ResetTimeoutElapsed,
    TrialFailed,
    HalfOpenTimedOut,
    TrialsSucceeded,
    ForcedOpen,
    ForcedClosed,
    Disabled,
    MetricsOnly,
    Reset,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::FailureRate => "failure_rate",
            Reason::SlowCallRate => "slow_call_rate",
            Reason::ResetTimeoutElapsed => "reset_timeout_elapsed",
            Reason::TrialFailed => "trial_failed",
            Reason::HalfOpenTimedOut => "half_open_timed_out",
            Reason::TrialsSucceeded => "trials_succeeded",
            Reason::ForcedOpen => "forced_open",
            Reason::ForcedClosed => "forced_closed",
            Reason::Disabled => "disabled",
            Reason::MetricsOnly => "metrics_only",
            Reason::Reset => "reset",
        }
    }
}

/// A state change, logged once the lock is released.
struct Transition {
    from: CircuitState,
    to: CircuitState,
    reason: Reason,
    counts: WindowCounts,
    reset_timeout: Duration,
    consecutive_opens: u32,
}

/// One circuit breaker's state and counts.
#[derive(Debug)]
pub struct Circuit {
    name: Box<str>,
    config: BreakerConfig,
    /// Time zero of `deadline`, of the window and of permit start times.
    origin: Instant,
    /// The state, read without a lock by every call.
    state: AtomicU8,
    /// Nanoseconds since `origin`. While open: when trials are due. While
    /// half-open: when it gives up waiting for its trials. Written before
    /// `state`, so a reader that sees the state sees its deadline.
    deadline: AtomicU64,
    /// The counts.
    window: Window,
    /// What only state changes read and write.
    control: Mutex<Control>,
}

#[derive(Debug)]
struct Control {
    /// Bumped on every transition. A trial's outcome only counts for the
    /// half-open period that admitted it.
    generation: u64,
    /// When the current state began, in nanoseconds since `origin`.
    since: u64,
    /// Openings since the last close; the reset timeout grows with them.
    consecutive_opens: u32,
    /// Trials admitted in this half-open period and not settled yet.
    trials_in_flight: u32,
    /// Trials of this half-open period that succeeded.
    trial_successes: u32,
}

impl Circuit {
    /// A closed circuit with an empty window, that lives for the rest of
    /// the process.
    ///
    /// Circuits are never freed, as tracing's callsites are not: every call
    /// through a circuit would otherwise clone and drop an `Arc`, and two
    /// threads calling through one circuit would then fight over the cache
    /// line of its reference count, which costs more than the whole rest of
    /// the call (see BENCHMARKS.md). A [`CircuitRegistry`] is bounded, so
    /// the circuits of a process are too.
    ///
    /// [`CircuitRegistry`]: super::CircuitRegistry
    ///
    /// # Panics
    ///
    /// If `config` does not [validate](BreakerConfig::validate): a broken
    /// configuration is a programming error, and binaries validate their
    /// flags before they get here.
    pub fn new(name: impl Into<Box<str>>, config: BreakerConfig) -> &'static Self {
        if let Err(error) = config.validate() {
            panic!("invalid breaker configuration: {error}");
        }
        Box::leak(Box::new(Self {
            name: name.into(),
            window: Window::new(&config),
            config,
            origin: Instant::now(),
            state: AtomicU8::new(CLOSED),
            deadline: AtomicU64::new(0),
            control: Mutex::new(Control {
                generation: 0,
                since: 0,
                consecutive_opens: 0,
                trials_in_flight: 0,
                trial_successes: 0,
            }),
        }))
    }

    /// The circuit's name.
    pub fn name(&'static self) -> &'static str {
        &self.name
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Asks to make a call: a [`Permit`] to call the service, or
    /// [`CircuitOpen`] when the call must not be made.
    ///
    /// While closed this reads one atomic. In half-open, exactly
    /// `half_open_trials` callers get trial permits, however many arrive at
    /// once; the others are short-circuited until the trials settle.
    pub fn try_acquire(&'static self) -> Result<Permit, CircuitOpen> {
        match self.state.load(Acquire) {
            CLOSED | METRICS_ONLY => Ok(self.permit(PermitKind::Normal)),
            DISABLED => Ok(self.permit(PermitKind::Unrecorded)),
            OPEN => {
                let now = self.now();
                let due = self.deadline.load(Acquire);
                if now < due {
                    self.window.record(now, Tally::Rejection);
                    return Err(self.open_error(Rejection::Open, Some(due - now)));
                }
                self.admit_trial(now)
            }
            HALF_OPEN => self.admit_trial(self.now()),
            _ => {
                self.window.record(self.now(), Tally::Rejection);
                Err(self.open_error(Rejection::ForcedOpen, None))
            }
        }
    }

    /// The state now, read without a lock: an open circuit whose reset
    /// timeout has passed is reported half-open, as the next call finds it.
    pub fn state(&self) -> CircuitState {
        let state = self.state.load(Acquire);
        match state {
            OPEN | HALF_OPEN if self.now() >= self.deadline.load(Acquire) => {
                if state == OPEN {
                    CircuitState::HalfOpen
                } else {
                    CircuitState::Open
                }
            }
            state => CircuitState::from_u8(state),
        }
    }

    /// The state, counts and timings now.
    pub fn snapshot(&'static self) -> CircuitSnapshot {
        let now = self.now();
        let mut control = self.lock();
        let transition = self.refresh(&mut control, now);
        let state = self.state.load(Acquire);
        let counts = self.window.totals(now);
        let next_opens = if state == OPEN {
            control.consecutive_opens
        } else {
            control.consecutive_opens + 1
        };
        let snapshot = CircuitSnapshot {
            name: self.name(),
            state: CircuitState::from_u8(state),
            time_in_state: nanos(now.saturating_sub(control.since)),
            counts,
            failure_rate_percent: counts.failure_rate_percent(),
            slow_call_rate_percent: counts.slow_call_rate_percent(),
            next_trial_in: (state == OPEN)
                .then(|| nanos(self.deadline.load(Acquire).saturating_sub(now))),
            consecutive_opens: control.consecutive_opens,
            reset_timeout: self.config.reset_timeout_after(next_opens.max(1)),
        };
        drop(control);
        self.log(transition);
        snapshot
    }

    /// The calls counted since the circuit began, which nothing resets (a
    /// [`Circuit::reset`] clears the window only): for monotonic counters
    /// such as Prometheus's.
    pub fn lifetime(&self) -> WindowCounts {
        self.window.lifetime()
    }

    /// Opens the circuit until an operator changes it: every call is
    /// rejected and no trial is made.
    pub fn force_open(&self) {
        self.operate(Reason::ForcedOpen, |circuit, control, now| {
            circuit.enter(control, FORCED_OPEN, now);
        });
    }

    /// Closes the circuit now, and resumes breaking as usual. The window
    /// keeps its counts.
    pub fn force_closed(&self) {
        self.operate(Reason::ForcedClosed, |circuit, control, now| {
            control.consecutive_opens = 0;
            circuit.enter(control, CLOSED, now);
        });
    }

    /// Turns the circuit off: every call goes through and nothing is
    /// counted, until an operator changes it.
    pub fn disable(&self) {
        self.operate(Reason::Disabled, |circuit, control, now| {
            circuit.enter(control, DISABLED, now);
        });
    }

    /// Counts every call but never opens, until an operator changes it.
    pub fn metrics_only(&self) {
        self.operate(Reason::MetricsOnly, |circuit, control, now| {
            circuit.enter(control, METRICS_ONLY, now);
        });
    }

    /// Back to a new circuit: closed, with an empty window and the base
    /// reset timeout.
    pub fn reset(&self) {
        self.operate(Reason::Reset, |circuit, control, now| {
            control.consecutive_opens = 0;
            circuit.window.clear(now);
            circuit.enter(control, CLOSED, now);
        });
    }

    fn operate(&self, reason: Reason, change: impl FnOnce(&Self, &mut Control, u64)) {
        let now = self.now();
        let mut control = self.lock();
        let from = CircuitState::from_u8(self.state.load(Acquire));
        change(self, &mut control, now);
        let transition = self.transition(&control, from, reason, now);
        drop(control);
        self.log(Some(transition));
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn permit(&'static self, kind: PermitKind) -> Permit {
        // The start time is only needed to tell slow calls, and reading the
        // clock is the dearest part of admitting a call.
        let started = match (kind, self.config.slow_call_duration) {
            (PermitKind::Unrecorded, _) | (_, None) => 0,
            _ => self.now(),
        };
        Permit {
            circuit: self,
            kind,
            started,
            settled: false,
        }
    }

    fn open_error(&'static self, rejection: Rejection, retry_after: Option<u64>) -> CircuitOpen {
        CircuitOpen::new(self.name(), rejection, retry_after.map(nanos))
    }

    fn lock(&self) -> MutexGuard<'_, Control> {
        // No code panics while holding the lock; if some did, the state
        // would still be coherent, so a poisoned lock is used as it is.
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn admit_trial(&'static self, now: u64) -> Result<Permit, CircuitOpen> {
        let mut control = self.lock();
        let transition = self.refresh(&mut control, now);
        let decision = match self.state.load(Acquire) {
            CLOSED | METRICS_ONLY => Ok(PermitKind::Normal),
            DISABLED => Ok(PermitKind::Unrecorded),
            OPEN => Err((
                Tally::Rejection,
                Rejection::Open,
                Some(self.deadline.load(Acquire).saturating_sub(now)),
            )),
            HALF_OPEN
                if control.trials_in_flight + control.trial_successes
                    < self.config.half_open_trials =>
            {
                control.trials_in_flight += 1;
                Ok(PermitKind::Trial {
                    generation: control.generation,
                })
            }
            HALF_OPEN => Err((Tally::ShortCircuit, Rejection::HalfOpenBusy, None)),
            _ => Err((Tally::Rejection, Rejection::ForcedOpen, None)),
        };
        drop(control);
        self.log(transition);
        decision
            .map(|kind| self.permit(kind))
            .map_err(|(tally, rejection, retry_after)| {
                self.window.record(now, tally);
                self.open_error(rejection, retry_after)
            })
    }

    /// Applies the timers: an open circuit whose reset timeout has passed
    /// becomes half-open; a half-open one whose trials took too long opens
    /// again.
    fn refresh(&self, control: &mut Control, now: u64) -> Option<Transition> {
        let state = self.state.load(Acquire);
        if !matches!(state, OPEN | HALF_OPEN) || now < self.deadline.load(Acquire) {
            return None;
        }
        let from = CircuitState::from_u8(state);
        let reason = if state == OPEN {
            self.enter_half_open(control, now);
            Reason::ResetTimeoutElapsed
        } else {
            self.enter_open(control, now);
            Reason::HalfOpenTimedOut
        };
        Some(self.transition(control, from, reason, now))
    }

    /// Records the outcome of an admitted call and moves the state if it
    /// must.
    fn settle(&self, kind: PermitKind, started: u64, outcome: Outcome) {
        if let PermitKind::Unrecorded = kind {
            return;
        }
        let now = self.now();
        let slow = self
            .config
            .slow_call_duration
            .is_some_and(|slow| now.saturating_sub(started) >= slow.as_nanos() as u64);
        self.window.record(
            now,
            match outcome {
                Outcome::Success => Tally::Success,
                Outcome::Failure => Tally::Failure,
                Outcome::Timeout => Tally::Timeout,
            },
        );
        if slow {
            self.window.record(now, Tally::SlowCall);
        }
        let bad = outcome != Outcome::Success || slow;
        match kind {
            PermitKind::Trial { generation } => self.settle_trial(generation, bad, now),
            // A success never opens a circuit: only a failure or a slow
            // call is worth summing the window for. (Opossum does the same;
            // resilience4j also checks after successes, which can only
            // matter when one brings the volume up to the threshold.)
            PermitKind::Normal if bad && self.state.load(Acquire) == CLOSED => self.evaluate(now),
            _ => {}
        }
    }

    /// Opens a closed circuit if a rate has reached its threshold.
    fn evaluate(&self, now: u64) {
        let counts = self.window.totals(now);
        let Some(reason) = self.trip(&counts) else {
            return;
        };
        let mut control = self.lock();
        // Another call may have opened it meanwhile, or an operator changed
        // the mode: only a circuit still closed opens.
        if self.state.load(Acquire) != CLOSED {
            return;
        }
        self.enter_open(&mut control, now);
        let transition = self.transition(&control, CircuitState::Closed, reason, now);
        drop(control);
        self.log(Some(transition));
    }

    /// Whether `counts` open the circuit, and why.
    fn trip(&self, counts: &WindowCounts) -> Option<Reason> {
        let calls = counts.calls();
        if calls == 0 || calls < u64::from(self.config.volume_threshold) {
            return None;
        }
        let reached = |part: u64, percent: u8| part > 0 && part * 100 >= u64::from(percent) * calls;
        if reached(
            counts.failures + counts.timeouts,
            self.config.failure_threshold_percent,
        ) {
            Some(Reason::FailureRate)
        } else if self.config.slow_call_duration.is_some()
            && reached(counts.slow_calls, self.config.slow_call_threshold_percent)
        {
            Some(Reason::SlowCallRate)
        } else {
            None
        }
    }

    fn settle_trial(&self, generation: u64, bad: bool, now: u64) {
        let mut control = self.lock();
        let mut transition = self.refresh(&mut control, now);
        // A trial of an earlier half-open period is late: counted, but it
        // moves nothing.
        if self.state.load(Acquire) == HALF_OPEN && control.generation == generation {
            control.trials_in_flight -= 1;
            if bad {
                self.enter_open(&mut control, now);
                transition = Some(self.transition(
                    &control,
                    CircuitState::HalfOpen,
                    Reason::TrialFailed,
                    now,
                ));
            } else {
                control.trial_successes += 1;
                if control.trial_successes >= self.config.half_open_trials {
                    control.consecutive_opens = 0;
                    self.enter(&mut control, CLOSED, now);
                    transition = Some(self.transition(
                        &control,
                        CircuitState::HalfOpen,
                        Reason::TrialsSucceeded,
                        now,
                    ));
                }
            }
        }
        drop(control);
        self.log(transition);
    }

    /// Gives back the trial slot of a call that ended with no outcome (its
    /// future was dropped), so that the next caller can make the trial.
    fn release_trial(&self, generation: u64) {
        let mut control = self.lock();
        if self.state.load(Acquire) == HALF_OPEN && control.generation == generation {
            control.trials_in_flight -= 1;
        }
    }

    fn enter_open(&self, control: &mut Control, now: u64) {
        control.consecutive_opens = control.consecutive_opens.saturating_add(1);
        let timeout = self.config.reset_timeout_after(control.consecutive_opens);
        self.deadline
            .store(now.saturating_add(timeout.as_nanos() as u64), Release);
        self.enter(control, OPEN, now);
    }

    fn enter_half_open(&self, control: &mut Control, now: u64) {
        let cap = self.config.half_open_max_duration.as_nanos() as u64;
        self.deadline.store(now.saturating_add(cap), Release);
        control.trials_in_flight = 0;
        control.trial_successes = 0;
        self.enter(control, HALF_OPEN, now);
    }

    fn enter(&self, control: &mut Control, state: u8, now: u64) {
        control.generation += 1;
        control.since = now;
        self.state.store(state, Release);
    }

    fn transition(
        &self,
        control: &Control,
        from: CircuitState,
        reason: Reason,
        now: u64,
    ) -> Transition {
        Transition {
            from,
            to: CircuitState::from_u8(self.state.load(Acquire)),
            reason,
            counts: self.window.totals(now),
            reset_timeout: self
                .config
                .reset_timeout_after(control.consecutive_opens.max(1)),
            consecutive_opens: control.consecutive_opens,
        }
    }

    /// A structured log line; inside a request, tracing-opentelemetry also
    /// makes it an event on the request's span.
    fn log(&self, transition: Option<Transition>) {
        let Some(Transition {
            from,
            to,
            reason,
            counts,
            reset_timeout,
            consecutive_opens,
        }) = transition
        else {
            return;
        };
        let circuit = &*self.name;
        let reason = reason.as_str();
        let failure_rate_percent = counts.failure_rate_percent();
        let slow_call_rate_percent = counts.slow_call_rate_percent();
        match to {
            CircuitState::Open => tracing::warn!(
                circuit,
                %from,
                %to,
                reason,
                successes = counts.successes,
                failures = counts.failures,
                timeouts = counts.timeouts,
                slow_calls = counts.slow_calls,
                failure_rate_percent,
                slow_call_rate_percent,
                reset_timeout_ms = reset_timeout.as_millis() as u64,
                consecutive_opens,
                "circuit opened; calls are rejected until trial calls succeed"
            ),
            CircuitState::HalfOpen => tracing::info!(
                circuit,
                %from,
                %to,
                reason,
                trials = self.config.half_open_trials,
                "circuit half-open; admitting trial calls"
            ),
            // Only an operator's Reset or ForceClosed finds it closed.
            CircuitState::Closed if from == CircuitState::Closed => {
                tracing::info!(circuit, %from, %to, reason, "circuit left closed by an operator")
            }
            CircuitState::Closed => tracing::info!(circuit, %from, %to, reason, "circuit closed"),
            CircuitState::ForcedOpen | CircuitState::Disabled | CircuitState::MetricsOnly => {
                tracing::warn!(circuit, %from, %to, reason, "circuit mode set by an operator")
            }
        }
    }
}

fn nanos(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PermitKind {
    /// Counted, and may trip the circuit.
    Normal,
    /// One of the trials of a half-open period.
    Trial { generation: u64 },
    /// Through a disabled circuit: counts nothing.
    Unrecorded,
}

/// The right to make one call through a circuit. Report how it ended with
/// [`Permit::record`]; a permit dropped without an outcome (a cancelled
/// call) counts nothing, and a trial permit gives its slot back.
#[derive(Debug)]
#[must_use = "a permit records nothing unless its outcome is recorded"]
pub struct Permit {
    circuit: &'static Circuit,
    kind: PermitKind,
    /// When the call started, in nanoseconds since the circuit's origin;
    /// only read when slow calls are detected.
    started: u64,
    settled: bool,
}

impl Permit {
    /// Records the call's outcome on the circuit.
    pub fn record(mut self, outcome: Outcome) {
        self.settled = true;
        self.circuit.settle(self.kind, self.started, outcome);
    }

    /// Whether this is a half-open trial call.
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

    fn circuit(volume_threshold: u32) -> &'static Circuit {
        Circuit::new(
            "test",
            BreakerConfig {
                volume_threshold,
                ..BreakerConfig::default()
            },
        )
    }

    fn call(circuit: &'static Circuit, outcome: Outcome) {
        circuit.try_acquire().expect("admitted").record(outcome);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_open_half_open_closed() {
        let circuit = circuit(0);
        call(circuit, Outcome::Failure);
        assert_eq!(circuit.state(), CircuitState::Open);
        let open = circuit.try_acquire().unwrap_err();
        assert_eq!(open.retry_after(), Some(Duration::from_secs(10)));

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(circuit.state(), CircuitState::HalfOpen);
        let trial = circuit.try_acquire().unwrap();
        assert!(trial.is_trial());
        assert!(circuit.try_acquire().is_err(), "one trial at a time");
        trial.record(Outcome::Success);
        assert_eq!(circuit.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_applies_the_timers() {
        let circuit = circuit(0);
        call(circuit, Outcome::Timeout);
        tokio::time::advance(Duration::from_secs(4)).await;
        let snapshot = circuit.snapshot();
        assert_eq!(snapshot.state, CircuitState::Open);
        assert_eq!(snapshot.time_in_state, Duration::from_secs(4));
        assert_eq!(snapshot.next_trial_in, Some(Duration::from_secs(6)));
        assert_eq!(snapshot.counts.timeouts, 1);
        assert_eq!(snapshot.failure_rate_percent, 100.0);

        tokio::time::advance(Duration::from_secs(6)).await;
        let snapshot = circuit.snapshot();
        assert_eq!(snapshot.state, CircuitState::HalfOpen);
        assert_eq!(snapshot.time_in_state, Duration::ZERO);
        assert_eq!(snapshot.next_trial_in, None);
    }
}
