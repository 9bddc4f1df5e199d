//! What recording a call costs: one gRPC-shaped call through
//! `RpcMetricsLayer` (the Prometheus recorder installed, as the binaries
//! install it), against the same service bare, the response body read to
//! its trailers in both.
//!
//! `cargo bench -p bench --bench metrics`

#![allow(clippy::disallowed_types)] // wall-clock measurement: std's Instant is right here

use std::{convert::Infallible, time::Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, Full};
use resilient_catalog::{
    proto::catalog::v1::{FILE_DESCRIPTOR_SET, catalog_service_server::SERVICE_NAME},
    telemetry::metrics::{self, KnownMethods, RpcMetricsLayer},
};
use tower::{Layer as _, Service, ServiceExt as _};

/// A service that answers at once, `grpc-status: 0` in its trailers.
fn answering() -> impl Service<
    Request<()>,
    Response = Response<impl http_body::Body<Data = Bytes, Error = Infallible>>,
    Error = Infallible,
> + Clone {
    tower::service_fn(|_: Request<()>| async {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let body =
            Full::new(Bytes::from_static(b"answer")).with_trailers(async { Some(Ok(trailers)) });
        Ok::<_, Infallible>(Response::new(body))
    })
}

fn request() -> Request<()> {
    Request::post("/catalog.v1.CatalogService/GetProduct")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(())
        .unwrap()
}

/// The time `iters` calls through `service` take, each read to its end.
fn calls<S, B>(runtime: &tokio::runtime::Runtime, service: S, iters: u64) -> std::time::Duration
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    runtime.block_on(async move {
        let start = Instant::now();
        for _ in 0..iters {
            let response = service.clone().oneshot(request()).await.unwrap();
            std::hint::black_box(response.into_body().collect().await.unwrap());
        }
        start.elapsed()
    })
}

fn rpc_metrics(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _handle = runtime.block_on(async { metrics::install().unwrap() });
    let methods = KnownMethods::of([(SERVICE_NAME, FILE_DESCRIPTOR_SET)]);

    let mut group = c.benchmark_group("rpc call");
    group.bench_function("baseline: no metrics", |b| {
        b.iter_custom(|iters| calls(&runtime, answering(), iters));
    });
    group.bench_function("rpc_server_call_duration_seconds", |b| {
        let service = RpcMetricsLayer::server(methods.clone()).layer(answering());
        b.iter_custom(|iters| calls(&runtime, service.clone(), iters));
    });
    group.finish();
}

criterion_group!(benches, rpc_metrics);
criterion_main!(benches);
