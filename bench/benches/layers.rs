//! What the layers every listener adds cost a call: one gRPC-shaped call
//! through `RpcMetricsLayer` (the Prometheus recorder installed, as the
//! binaries install it), through `DeadlineLayer` (the request carries a
//! `grpc-timeout`) and through `UnknownMethodLayer` (a served method), against the same service bare, the response body read
//! to its trailers in all.
//!
//! `cargo bench -p bench --bench layers`; `bench/instructions.sh` counts
//! instructions, which a shared machine does not disturb.

#![allow(clippy::disallowed_types)] // wall-clock measurement: std's Instant is right here

use std::time::{Duration, Instant};

use bench::layers::{self, AnswerBody};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use resilient_catalog::telemetry::metrics;
use tower::Service;

/// The time `iters` calls through `service` take.
fn calls<S, B>(runtime: &tokio::runtime::Runtime, service: S, iters: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<B>, Error = std::convert::Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    runtime.block_on(async move {
        let start = Instant::now();
        layers::call(service, iters).await;
        start.elapsed()
    })
}

fn listener_layers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _handle = runtime.block_on(async { metrics::install().unwrap() });

    let mut group = c.benchmark_group("rpc call");
    group.bench_function("baseline: no layer", |b| {
        b.iter_custom(|iters| calls::<_, AnswerBody>(&runtime, layers::answering(), iters));
    });
    group.bench_function("RpcMetricsLayer", |b| {
        let service = layers::with_metrics();
        b.iter_custom(|iters| calls(&runtime, service.clone(), iters));
    });
    group.bench_function("DeadlineLayer", |b| {
        let service = layers::with_deadline();
        b.iter_custom(|iters| calls(&runtime, service.clone(), iters));
    });
    group.bench_function("UnknownMethodLayer", |b| {
        let service = layers::with_unknown_method();
        b.iter_custom(|iters| calls(&runtime, service.clone(), iters));
    });
    group.finish();
}

criterion_group!(benches, listener_layers);
criterion_main!(benches);
