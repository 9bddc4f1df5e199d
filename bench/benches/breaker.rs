//! The overhead per call of three circuit breakers wrapping the same no-op
//! tower service, measured in one run: ours, tower-resilience-circuitbreaker
//! 0.14 and failsafe 1.3, with the bare service as the baseline.
//!
//! `cargo bench -p bench --bench breaker`
//!
//! * `closed/1 thread`: calls through a closed breaker.
//! * `closed/2 threads`: two threads calling through one shared breaker;
//!   the time is wall time per call (the inverse of throughput).
//! * `open/1 thread`: the rejection of a call by an open breaker.

use std::time::Duration;

use bench::{Baseline, failsafe, noop, one_thread, ours, threads, tower_resilience, trip};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn closed_one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed/1 thread");
    group.bench_function("baseline: no breaker", |b| {
        let subject = Baseline(noop());
        b.iter_custom(|iters| one_thread(&subject, iters));
    });
    group.bench_function("resilient-catalog", |b| {
        let subject = ours();
        b.iter_custom(|iters| one_thread(&subject, iters));
    });
    group.bench_function("tower-resilience-circuitbreaker 0.14", |b| {
        let subject = tower_resilience();
        b.iter_custom(|iters| one_thread(&subject, iters));
    });
    group.bench_function("failsafe 1.3", |b| {
        let subject = failsafe();
        b.iter_custom(|iters| one_thread(&subject, iters));
    });
    group.finish();
}

fn closed_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed/2 threads");
    let id = |name| BenchmarkId::new(name, 2);
    group.bench_function(id("baseline: no breaker"), |b| {
        let subject = Baseline(noop());
        b.iter_custom(|iters| threads(&subject, 2, iters));
    });
    group.bench_function(id("resilient-catalog"), |b| {
        let subject = ours();
        b.iter_custom(|iters| threads(&subject, 2, iters));
    });
    group.bench_function(id("tower-resilience-circuitbreaker 0.14"), |b| {
        let subject = tower_resilience();
        b.iter_custom(|iters| threads(&subject, 2, iters));
    });
    group.bench_function(id("failsafe 1.3"), |b| {
        let subject = failsafe();
        b.iter_custom(|iters| threads(&subject, 2, iters));
    });
    group.finish();
}

fn open_one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("open/1 thread");
    group.bench_function("resilient-catalog", |b| {
        let subject = ours();
        trip(&subject, 5);
        b.iter_custom(|iters| one_thread(&subject, iters));
    });
    group.bench_function("tower-resilience-circuitbreaker 0.14", |b| {
        let subject = tower_resilience();
        trip(&subject, 5);
        b.iter_custom(|iters| one_thread(&subject, iters));
    });
    group.bench_function("failsafe 1.3", |b| {
        let subject = failsafe();
        trip(&subject, 5);
        b.iter_custom(|iters| one_thread(&subject, iters));
    });
    group.finish();
}

criterion_group!(
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = closed_one_thread, closed_two_threads, open_one_thread
);
criterion_main!(benches);
