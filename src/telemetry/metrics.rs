//! Prometheus metrics: the recorder, the `/metrics` endpoint that admin
//! listeners serve, and the RPC duration histograms of the OpenTelemetry
//! conventions (`rpc.server.call.duration`, `rpc.client.call.duration`),
//! named as Prometheus names them.
//!
//! The crates are `metrics` and `metrics-exporter-prometheus`: code records
//! through a facade (a counter is an atomic), and the exporter renders the
//! Prometheus text format on demand, with no pipeline of its own. The
//! OpenTelemetry SDK's own Prometheus exporter is no longer maintained, and
//! a second OTLP pipeline only to be scraped would add a collector hop for
//! nothing.

use std::{
    collections::HashMap,
    fmt,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use metrics::{Histogram, SharedString};
pub use metrics_exporter_prometheus::{BuildError, PrometheusHandle};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use pin_project_lite::pin_project;
use prost::Message as _;
use tokio::time::Instant;
use tonic::Code;
use tower::{Layer, Service};

use crate::grpc_code;

/// The buckets of the RPC duration histograms, in seconds: those the
/// OpenTelemetry RPC conventions recommend.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// How often the recorder folds recorded samples into its histograms
/// when nobody scrapes: samples wait in a queue until then.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the process's metrics recorder (once per process) and returns
/// the handle that renders what it recorded.
///
/// Call it inside the Tokio runtime: a task folds recorded samples into
/// the histograms every few seconds, so that memory stays flat when no
/// Prometheus scrapes.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = builder()?.install_recorder()?;
    tokio::spawn({
        let handle = handle.clone();
        async move {
            let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                upkeep.tick().await;
                handle.run_upkeep();
            }
        }
    });
    Ok(handle)
}

/// The exporter, with our histogram buckets.
fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Suffix("_duration_seconds".into()),
        &DURATION_BUCKETS,
    )
}

/// What an admin listener serves on `/metrics`: the recorded metrics, and
/// those read at scrape time (a circuit's state, say) by an observer.
#[derive(Clone)]
pub struct MetricsEndpoint {
    handle: PrometheusHandle,
    observe: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl MetricsEndpoint {
    /// Serves what `handle` recorded.
    pub fn new(handle: PrometheusHandle) -> Self {
        Self {
            handle,
            observe: None,
        }
    }

    /// Runs `observe` before each rendering, to record values that are read
    /// rather than counted as they happen.
    pub fn observing(mut self, observe: impl Fn() + Send + Sync + 'static) -> Self {
        self.observe = Some(Arc::new(observe));
        self
    }

    /// The metrics, in the Prometheus text format.
    pub fn render(&self) -> String {
        if let Some(observe) = &self.observe {
            observe();
        }
        self.handle.render()
    }
}

impl fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsEndpoint").finish_non_exhaustive()
    }
}

/// The methods a listener serves or a client calls, by full name
/// (`catalog.v1.CatalogService/GetProduct`). Any other path is recorded as
/// `_OTHER`, as the OpenTelemetry conventions say: a caller sending made-up
/// paths cannot grow the number of series without bound.
///
/// Each method keeps the handles of its series, registered with the
/// recorder in effect at their first call. Recording through a handle is
/// an atomic push; looking the series up by its labels on every call
/// (`metrics::histogram!`) built, hashed and found the key each time, and
/// doubled the cost of a call through the layer (`cargo bench -p bench
/// --bench metrics`).
#[derive(Clone, Debug)]
pub struct KnownMethods {
    known: Arc<HashMap<Box<str>, Arc<MethodSeries>>>,
    other: Arc<MethodSeries>,
    /// The services the methods belong to, in the order given.
    services: Arc<[Box<str>]>,
}

impl Default for KnownMethods {
    fn default() -> Self {
        Self {
            known: Arc::default(),
            other: Arc::new(MethodSeries::new(Self::OTHER.into())),
            services: Arc::new([]),
        }
    }
}

impl KnownMethods {
    /// The label of a path that names no known method.
    pub const OTHER: &str = "_OTHER";

    /// The methods of the services `services` names, each described in the
    /// encoded descriptor set beside it.
    ///
    /// # Panics
    ///
    /// If a descriptor set does not decode: they are compiled in.
    pub fn of<'a>(services: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut known = HashMap::new();
        let mut names = Vec::new();
        for (name, descriptor_set) in services {
            names.push(name.into());
            let files = prost_types::FileDescriptorSet::decode(descriptor_set)
                .expect("the compiled-in descriptor sets decode");
            for file in &files.file {
                for service in &file.service {
                    let full_name = format!("{}.{}", file.package(), service.name());
                    if full_name == name {
                        known.extend(service.method.iter().map(|method| {
                            let method = format!("{full_name}/{}", method.name());
                            let series = Arc::new(MethodSeries::new(method.clone().into()));
                            (method.into_boxed_str(), series)
                        }));
                    }
                }
            }
        }
        Self {
            known: Arc::new(known),
            services: names.into(),
            ..Self::default()
        }
    }

    /// Whether `path` (`/package.Service/Method`) names a known method.
    pub fn serves(&self, path: &str) -> bool {
        !Arc::ptr_eq(self.series(path), &self.other)
    }

    /// The fully-qualified names of the services whose methods are known.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|name| &**name)
    }

    /// The series of a request to `path`.
    fn series(&self, path: &str) -> &Arc<MethodSeries> {
        let method = path.strip_prefix('/').unwrap_or(path);
        self.known.get(method).unwrap_or(&self.other)
    }
}

/// The number of gRPC status codes, `OK` (0) to `UNAUTHENTICATED` (16).
const STATUS_CODES: usize = 17;

/// One method's histograms, by side and status code, each registered on
/// its first call.
#[derive(Debug)]
struct MethodSeries {
    label: SharedString,
    histograms: [[OnceLock<Histogram>; STATUS_CODES]; 2],
}

impl MethodSeries {
    fn new(label: SharedString) -> Self {
        Self {
            label,
            histograms: Default::default(),
        }
    }

    fn histogram(&self, side: Side, code: Code) -> &Histogram {
        // tonic maps codes beyond 16 to UNKNOWN, so the index is in range.
        self.histograms[side as usize][code as usize].get_or_init(|| {
            metrics::histogram!(
                side.histogram(),
                "rpc_system_name" => "grpc",
                "rpc_method" => self.label.clone(),
                "rpc_response_status_code" => grpc_code::name(code),
            )
        })
    }
}

/// Which side of a call the histogram describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Server = 0,
    Client = 1,
}

impl Side {
    fn histogram(self) -> &'static str {
        match self {
            Side::Server => "rpc_server_call_duration_seconds",
            Side::Client => "rpc_client_call_duration_seconds",
        }
    }
}

/// Records the duration of every gRPC call through it, by method and
/// status code, until the response body ends: the status may be in the
/// headers (trailers-only) or in the trailers.
///
/// Requests that are not gRPC (a scrape of `/metrics`, say) pass through
/// unmeasured.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    side: Side,
    methods: KnownMethods,
}

impl RpcMetricsLayer {
    /// `rpc_server_call_duration_seconds`, for a server that serves
    /// `methods`.
    pub fn server(methods: KnownMethods) -> Self {
        Self {
            side: Side::Server,
            methods,
        }
    }

    /// `rpc_client_call_duration_seconds`, for a client that calls
    /// `methods`.
    pub fn client(methods: KnownMethods) -> Self {
        Self {
            side: Side::Client,
            methods,
        }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            side: self.side,
            methods: self.methods.clone(),
        }
    }
}

/// The service of [`RpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
    side: Side,
    methods: KnownMethods,
}

/// One call being measured.
#[derive(Debug)]
struct Measure {
    side: Side,
    series: Arc<MethodSeries>,
    start: Instant,
}

impl Measure {
    fn record(self, code: Code) {
        self.series
            .histogram(self.side, code)
            .record(self.start.elapsed().as_secs_f64());
    }
}

/// Whether a request is gRPC: `application/grpc`, or one of its
/// `application/grpc+proto` kinds.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

fn status_of(headers: &HeaderMap) -> Option<Code> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(Code::from_i32(code))
}

impl<S, B, R> Service<Request<B>> for RpcMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<MeteredBody<R>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let measure = is_grpc(request.headers()).then(|| Measure {
            side: self.side,
            series: Arc::clone(self.methods.series(request.uri().path())),
            start: Instant::now(),
        });
        MeteredFuture {
            inner: self.inner.call(request),
            measure,
        }
    }
}

pin_project! {
    /// The response future of [`RpcMetrics`]. Dropped before the response
    /// (a caller's timeout, say), it records the call as `CANCELLED`: the
    /// slowest calls are the ones a histogram must not lose.
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        measure: Option<Measure>,
    }

    impl<F> PinnedDrop for MeteredFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(measure) = this.project().measure.take() {
                measure.record(Code::Cancelled);
            }
        }
    }
}

impl<F, R, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<MeteredBody<R>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(measure) = this.measure.take() else {
            // Not gRPC: nothing to measure.
            return Poll::Ready(result.map(|response| {
                response.map(|inner| MeteredBody {
                    inner,
                    measure: None,
                })
            }));
        };
        Poll::Ready(match result {
            Ok(response) => {
                // A trailers-only response has its status in the headers.
                let measure = match status_of(response.headers()) {
                    Some(code) => {
                        measure.record(code);
                        None
                    }
                    None => Some(measure),
                };
                Ok(response.map(|inner| MeteredBody { inner, measure }))
            }
            Err(error) => {
                measure.record(Code::Unavailable);
                Err(error)
            }
        })
    }
}

pin_project! {
    /// A response body that records its call when the trailers arrive, or
    /// as cancelled if it is dropped first.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        measure: Option<Measure>,
    }

    impl<B> PinnedDrop for MeteredBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(measure) = this.project().measure.take() {
                measure.record(Code::Cancelled);
            }
        }
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(measure) = this.measure.take()
                {
                    measure.record(status_of(trailers).unwrap_or(Code::Unknown));
                }
            }
            Some(Err(_)) => {
                if let Some(measure) = this.measure.take() {
                    measure.record(Code::Unavailable);
                }
            }
            None => {
                // Ended with no trailers: gRPC's status never came.
                if let Some(measure) = this.measure.take() {
                    measure.record(Code::Unknown);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use tower::ServiceExt as _;

    use super::*;
    use crate::proto::catalog::v1::{FILE_DESCRIPTOR_SET, catalog_service_server::SERVICE_NAME};

    const GET_PRODUCT: &str = "/catalog.v1.CatalogService/GetProduct";

    fn methods() -> KnownMethods {
        KnownMethods::of([(SERVICE_NAME, FILE_DESCRIPTOR_SET)])
    }

    fn grpc_request(path: &str) -> Request<()> {
        Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(())
            .unwrap()
    }

    /// A server whose answers carry `grpc-status: code` in their trailers.
    fn answering(
        code: Code,
    ) -> impl Service<
        Request<()>,
        Response = Response<impl Body<Data = Bytes, Error = Infallible>>,
        Error = Infallible,
    > {
        tower::service_fn(move |_: Request<()>| async move {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", (code as i32).into());
            let body = Full::new(Bytes::from_static(b"answer"))
                .with_trailers(async { Some(Ok(trailers)) });
            Ok::<_, Infallible>(Response::new(body))
        })
    }

    /// The count of `histogram` with `labels`, in `rendered`.
    fn count(rendered: &str, histogram: &str, labels: &str) -> Option<u64> {
        let prefix = format!("{histogram}_count{{{labels}}} ");
        rendered
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.parse().unwrap())
    }

    fn labels(method: &str, code: &str) -> String {
        format!(r#"rpc_system_name="grpc",rpc_method="{method}",rpc_response_status_code="{code}""#)
    }

    #[test]
    fn known_methods_are_those_of_the_named_services() {
        let methods = methods();
        let label = |methods: &KnownMethods, path| methods.series(path).label.to_string();
        assert_eq!(
            label(&methods, GET_PRODUCT),
            "catalog.v1.CatalogService/GetProduct"
        );
        assert_eq!(label(&methods, "/catalog.v1.CatalogService/Nope"), "_OTHER");
        assert_eq!(label(&methods, "/anything/at/all"), "_OTHER");
        let none = KnownMethods::of([("catalog.v1.Missing", FILE_DESCRIPTOR_SET)]);
        assert_eq!(label(&none, GET_PRODUCT), "_OTHER");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_is_timed_by_method_and_the_code_in_its_trailers() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let _guard = metrics::set_default_local_recorder(&recorder);

        let service = RpcMetricsLayer::server(methods()).layer(answering(Code::NotFound));
        let response = service.oneshot(grpc_request(GET_PRODUCT)).await.unwrap();
        let rendered = handle.render();
        assert_eq!(
            count(
                &rendered,
                "rpc_server_call_duration_seconds",
                &labels("catalog.v1.CatalogService/GetProduct", "NOT_FOUND")
            ),
            None,
            "recorded before the trailers came:\n{rendered}"
        );

        response.into_body().collect().await.unwrap();
        let rendered = handle.render();
        assert_eq!(
            count(
                &rendered,
                "rpc_server_call_duration_seconds",
                &labels("catalog.v1.CatalogService/GetProduct", "NOT_FOUND")
            ),
            Some(1),
            "{rendered}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_trailers_only_answer_and_an_unknown_method_are_recorded() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let _guard = metrics::set_default_local_recorder(&recorder);

        // tonic answers an unknown path with its status in the headers.
        let unimplemented = tower::service_fn(|_: Request<()>| async {
            let mut response = Response::new(Full::new(Bytes::new()));
            response
                .headers_mut()
                .insert("grpc-status", (Code::Unimplemented as i32).into());
            Ok::<_, Infallible>(response)
        });
        let service = RpcMetricsLayer::client(methods()).layer(unimplemented);
        let response = service
            .oneshot(grpc_request("/made.up.Service/Method"))
            .await
            .unwrap();
        drop(response);
        let rendered = handle.render();
        assert_eq!(
            count(
                &rendered,
                "rpc_client_call_duration_seconds",
                &labels("_OTHER", "UNIMPLEMENTED")
            ),
            Some(1),
            "{rendered}"
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_call_abandoned_before_its_answer_is_cancelled_with_its_duration() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let _guard = metrics::set_default_local_recorder(&recorder);

        let slow = tower::service_fn(|_: Request<()>| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let service = RpcMetricsLayer::client(methods()).layer(slow);
        let abandoned = tokio::time::timeout(
            Duration::from_secs(2),
            service.oneshot(grpc_request(GET_PRODUCT)),
        )
        .await;
        assert!(abandoned.is_err());

        let rendered = handle.render();
        let series = labels("catalog.v1.CatalogService/GetProduct", "CANCELLED");
        assert_eq!(
            count(&rendered, "rpc_client_call_duration_seconds", &series),
            Some(1),
            "{rendered}"
        );
        // Two seconds: in the bucket up to 2.5 s, not in the one up to 1 s.
        for (le, expected) in [("1", 0), ("2.5", 1)] {
            let line = format!(
                r#"rpc_client_call_duration_seconds_bucket{{{series},le="{le}"}} {expected}"#
            );
            assert!(rendered.contains(&line), "{line}\n{rendered}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn requests_that_are_not_grpc_are_not_measured() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let _guard = metrics::set_default_local_recorder(&recorder);

        let service = RpcMetricsLayer::server(methods()).layer(answering(Code::Ok));
        let scrape = Request::get("/metrics").body(()).unwrap();
        let response = service.oneshot(scrape).await.unwrap();
        response.into_body().collect().await.unwrap();
        assert!(
            !handle.render().contains("rpc_server_call_duration_seconds"),
            "{}",
            handle.render()
        );
    }

    #[test]
    fn an_endpoint_observes_before_it_renders() {
        let recorder = builder().unwrap().build_recorder();
        let endpoint = MetricsEndpoint::new(recorder.handle()).observing(|| {
            metrics::gauge!("observed_now").set(7.0);
        });
        let rendered = metrics::with_local_recorder(&recorder, || endpoint.render());
        assert!(rendered.contains("observed_now 7"), "{rendered}");
    }
}
