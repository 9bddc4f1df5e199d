//! The breaker against a reference model: for random configurations and
//! random sequences of calls, clock advances and operator controls, the
//! real circuit and a plain, obviously-correct model must agree on the
//! state, the counts and the timers after every step.
//!
//! The model keeps every event with its time and recomputes the window by
//! filtering them; the real window keeps fixed buckets of atomics. The
//! model's state machine is written out plainly; the real one is split
//! between atomics and a lock.

use std::time::Duration;

use proptest::prelude::*;
use resilient_catalog::breaker::{
    BreakerConfig, Circuit, CircuitState, Outcome, Rejection, WindowCounts,
};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A call that ends with `outcome` after `takes_ms`.
    Call {
        outcome: Outcome,
        takes_ms: u64,
    },
    /// A call whose future is dropped after `takes_ms`: no outcome.
    Abandon {
        takes_ms: u64,
    },
    Advance {
        ms: u64,
    },
    ForceOpen,
    ForceClosed,
    Disable,
    MetricsOnly,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Success),
        2 => Just(Outcome::Failure),
        1 => Just(Outcome::Timeout),
    ];
    prop_oneof![
        12 => (outcome, 0..1_500u64).prop_map(|(outcome, takes_ms)| Op::Call { outcome, takes_ms }),
        1 => (0..1_500u64).prop_map(|takes_ms| Op::Abandon { takes_ms }),
        6 => (0..4_000u64).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::ForceClosed),
        1 => Just(Op::Disable),
        1 => Just(Op::MetricsOnly),
        1 => Just(Op::Reset),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        (
            prop_oneof![Just(1u8), Just(25), Just(50), Just(75), Just(100)],
            0..6u32,
        ),
        (1..5u64, 1..4u32, 1..12u64),
        (1..4u32, 1..6u64),
        (1..12u64, 1..6u32),
        (
            prop::option::of(1..1_200u64),
            prop_oneof![Just(1u8), Just(50), Just(100)],
        ),
    )
        .prop_map(
            |(
                (failure_threshold_percent, volume_threshold),
                (reset_s, reset_timeout_multiplier, max_reset_s),
                (half_open_trials, half_open_max_s),
                (window_s, buckets),
                (slow_ms, slow_call_threshold_percent),
            )| BreakerConfig {
                failure_threshold_percent,
                volume_threshold,
                reset_timeout: Duration::from_secs(reset_s),
                reset_timeout_multiplier,
                max_reset_timeout: Duration::from_secs(reset_s.max(max_reset_s)),
                half_open_trials,
                half_open_max_duration: Duration::from_secs(half_open_max_s),
                window: Duration::from_secs(window_s),
                buckets,
                slow_call_duration: slow_ms.map(Duration::from_millis),
                slow_call_threshold_percent,
            },
        )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tally {
    Success,
    Failure,
    Timeout,
    Slow,
    Rejection,
    ShortCircuit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: u64,
    },
    HalfOpen {
        deadline: u64,
        in_flight: u32,
        successes: u32,
    },
    ForcedOpen,
    Disabled,
    MetricsOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Trial(u64),
    Unrecorded,
}

/// The reference model. Times are nanoseconds since the circuit began.
struct Model {
    config: BreakerConfig,
    events: Vec<(u64, Tally)>,
    state: State,
    generation: u64,
    consecutive_opens: u32,
}

impl Model {
    fn bucket(&self) -> u64 {
        self.config.bucket_len().as_nanos() as u64
    }

    fn totals(&self, now: u64) -> WindowCounts {
        let current = now / self.bucket();
        let mut counts = WindowCounts::default();
        for &(at, tally) in &self.events {
            let epoch = at / self.bucket();
            if epoch <= current && current - epoch < u64::from(self.config.buckets) {
                match tally {
                    Tally::Success => counts.successes += 1,
                    Tally::Failure => counts.failures += 1,
                    Tally::Timeout => counts.timeouts += 1,
                    Tally::Slow => counts.slow_calls += 1,
                    Tally::Rejection => counts.rejections += 1,
                    Tally::ShortCircuit => counts.short_circuits += 1,
                }
            }
        }
        counts
    }

    fn set(&mut self, state: State) {
        self.state = state;
        self.generation += 1;
    }

    fn open(&mut self, now: u64) {
        self.consecutive_opens += 1;
        let timeout = self.config.reset_timeout_after(self.consecutive_opens);
        self.set(State::Open {
            until: now + timeout.as_nanos() as u64,
        });
    }

    fn refresh(&mut self, now: u64) {
        match self.state {
            State::Open { until } if now >= until => self.set(State::HalfOpen {
                deadline: now + self.config.half_open_max_duration.as_nanos() as u64,
                in_flight: 0,
                successes: 0,
            }),
            State::HalfOpen { deadline, .. } if now >= deadline => self.open(now),
            _ => {}
        }
    }

    fn effective(&self, now: u64) -> CircuitState {
        match self.state {
            State::Closed => CircuitState::Closed,
            State::Open { until } if now >= until => CircuitState::HalfOpen,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { deadline, .. } if now >= deadline => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
            State::ForcedOpen => CircuitState::ForcedOpen,
            State::Disabled => CircuitState::Disabled,
            State::MetricsOnly => CircuitState::MetricsOnly,
        }
    }

    fn acquire(&mut self, now: u64) -> Result<Kind, Rejection> {
        self.refresh(now);
        match &mut self.state {
            State::Closed | State::MetricsOnly => Ok(Kind::Normal),
            State::Disabled => Ok(Kind::Unrecorded),
            State::Open { .. } | State::ForcedOpen => {
                let rejection = if self.state == State::ForcedOpen {
                    Rejection::ForcedOpen
                } else {
                    Rejection::Open
                };
                self.events.push((now, Tally::Rejection));
                Err(rejection)
            }
            State::HalfOpen {
                in_flight,
                successes,
                ..
            } => {
                if *in_flight + *successes < self.config.half_open_trials {
                    *in_flight += 1;
                    Ok(Kind::Trial(self.generation))
                } else {
                    self.events.push((now, Tally::ShortCircuit));
                    Err(Rejection::HalfOpenBusy)
                }
            }
        }
    }

    fn settle(&mut self, kind: Kind, started: u64, outcome: Outcome, now: u64) {
        if kind == Kind::Unrecorded {
            return;
        }
        self.events.push((
            now,
            match outcome {
                Outcome::Success => Tally::Success,
                Outcome::Failure => Tally::Failure,
                Outcome::Timeout => Tally::Timeout,
            },
        ));
        let slow = self
            .config
            .slow_call_duration
            .is_some_and(|slow| now - started >= slow.as_nanos() as u64);
        if slow {
            self.events.push((now, Tally::Slow));
        }
        let bad = outcome != Outcome::Success || slow;
        match kind {
            Kind::Trial(generation) => {
                self.refresh(now);
                if let State::HalfOpen {
                    in_flight,
                    successes,
                    ..
                } = &mut self.state
                    && generation == self.generation
                {
                    *in_flight -= 1;
                    if bad {
                        self.open(now);
                    } else {
                        *successes += 1;
                        if *successes >= self.config.half_open_trials {
                            self.consecutive_opens = 0;
                            self.set(State::Closed);
                        }
                    }
                }
            }
            Kind::Normal if bad && self.state == State::Closed => {
                let counts = self.totals(now);
                let calls = counts.calls();
                let reached =
                    |part: u64, percent: u8| part > 0 && part * 100 >= u64::from(percent) * calls;
                let trips = calls > 0
                    && calls >= u64::from(self.config.volume_threshold)
                    && (reached(
                        counts.failures + counts.timeouts,
                        self.config.failure_threshold_percent,
                    ) || (self.config.slow_call_duration.is_some()
                        && reached(counts.slow_calls, self.config.slow_call_threshold_percent)));
                if trips {
                    self.open(now);
                }
            }
            _ => {}
        }
    }

    fn release(&mut self, kind: Kind) {
        if let (Kind::Trial(generation), State::HalfOpen { in_flight, .. }) =
            (kind, &mut self.state)
            && generation == self.generation
        {
            *in_flight -= 1;
        }
    }
}

fn run(config: BreakerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let origin = Instant::now();
        let now = || origin.elapsed().as_nanos() as u64;
        let circuit = Circuit::new("/model", config.clone());
        let mut model = Model {
            config,
            events: Vec::new(),
            state: State::Closed,
            generation: 0,
            consecutive_opens: 0,
        };
        for (step, op) in ops.into_iter().enumerate() {
            let call = match op {
                Op::Call { outcome, takes_ms } => Some((Some(outcome), takes_ms)),
                Op::Abandon { takes_ms } => Some((None, takes_ms)),
                _ => None,
            };
            match op {
                Op::Call { .. } | Op::Abandon { .. } => {
                    let (outcome, takes_ms) = call.expect("a call");
                    let started = now();
                    let expected = model.acquire(started);
                    match (circuit.try_acquire(), expected) {
                        (Ok(permit), Ok(kind)) => {
                            prop_assert_eq!(
                                permit.is_trial(),
                                matches!(kind, Kind::Trial(_)),
                                "step {}",
                                step
                            );
                            tokio::time::advance(Duration::from_millis(takes_ms)).await;
                            match outcome {
                                Some(outcome) => {
                                    permit.record(outcome);
                                    model.settle(kind, started, outcome, now());
                                }
                                None => {
                                    drop(permit);
                                    model.release(kind);
                                }
                            }
                        }
                        (Err(open), Err(rejection)) => {
                            prop_assert_eq!(open.rejection(), rejection, "step {}", step);
                        }
                        (real, model) => {
                            return Err(TestCaseError::fail(format!(
                                "step {step} {op:?}: circuit {:?}, model {model:?}",
                                real.map(|permit| permit.is_trial())
                            )));
                        }
                    }
                }
                Op::Advance { ms } => tokio::time::advance(Duration::from_millis(ms)).await,
                Op::ForceOpen => {
                    circuit.force_open();
                    model.set(State::ForcedOpen);
                }
                Op::ForceClosed => {
                    circuit.force_closed();
                    model.consecutive_opens = 0;
                    model.set(State::Closed);
                }
                Op::Disable => {
                    circuit.disable();
                    model.set(State::Disabled);
                }
                Op::MetricsOnly => {
                    circuit.metrics_only();
                    model.set(State::MetricsOnly);
                }
                Op::Reset => {
                    circuit.reset();
                    model.events.clear();
                    model.consecutive_opens = 0;
                    model.set(State::Closed);
                }
            }

            let at = now();
            prop_assert_eq!(
                circuit.state(),
                model.effective(at),
                "step {} after {:?}",
                step,
                op
            );
            // A snapshot applies the timers, as the model's refresh does.
            let snapshot = circuit.snapshot();
            model.refresh(at);
            prop_assert_eq!(
                snapshot.counts,
                model.totals(at),
                "step {} after {:?}",
                step,
                op
            );
            prop_assert_eq!(
                snapshot.consecutive_opens,
                model.consecutive_opens,
                "step {}",
                step
            );
            let next_trial_in = match model.state {
                State::Open { until } => Some(Duration::from_nanos(until - at)),
                _ => None,
            };
            prop_assert_eq!(snapshot.next_trial_in, next_trial_in, "step {}", step);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_circuit_behaves_as_the_model(config in config(), ops in prop::collection::vec(op(), 1..120)) {
        run(config, ops)?;
    }
}
