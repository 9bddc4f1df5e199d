//! A Rust client of the catalog gateway: the `catalog.v1` contract compiled
//! with tonic, one [`connect`] call, and readers for what the gateway says
//! about each answer: [`Provenance`] (its `x-cache`, `x-cache-age` and
//! `x-circuit-state` metadata) and [`retry_delay`] (the `RetryInfo` of an
//! `UNAVAILABLE`).
//!
//! ```toml
//! [dependencies]
//! resilient-catalog-client = { git = "https://github.com/resilient-catalog/resilient-catalog" }
//! ```
//!
//! # The scenario
//!
//! The same scenario as the Python, Node.js and Go clients under
//! `examples/clients/`: a product, the whole catalog page by page, an
//! unknown id, a deadline of the caller's own, then the backend failing
//! (made so through its `backend.v1.ChaosService`, an operator tool).
//!
//! It runs as this crate's doc test, against a backend and a gateway that
//! it starts on free ports, or against a running stack when
//! `CATALOG_GATEWAY` and `CATALOG_BACKEND` are set:
//! `CATALOG_GATEWAY=localhost:50051 CATALOG_BACKEND=localhost:50052 cargo
//! test -p resilient-catalog-client --doc`.
//!
//! ```
//! use std::time::Duration;
//!
//! use resilient_catalog_client::{
//!     CacheStatus, Code, Provenance, connect, retry_delay, with_deadline,
//!     proto::{
//!         backend::v1::{SetFaultsRequest, chaos_service_client::ChaosServiceClient},
//!         catalog::v1::{GetProductRequest, ListProductsRequest},
//!     },
//! };
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (gateway, backend) = stack::addresses().await?;
//! let deadline = Duration::from_secs(5);
//! let get = |id: &str| with_deadline(GetProductRequest { id: id.into() }, deadline);
//!
//! let mut catalog = connect(&gateway).await?;
//!
//! // 1. A product, and where its answer came from.
//! let response = catalog.get_product(get("sku-1001")).await?;
//! let provenance = Provenance::of(response.metadata());
//! let product = response.into_inner().product.expect("a product");
//! let price = product.price.expect("a price");
//! println!("{}: {} ({:?})", product.id, price, provenance.cache);
//! assert_eq!(provenance.cache, Some(CacheStatus::Miss));
//!
//! // 2. The whole catalog, page by page.
//! let (mut ids, mut pages, mut page_token) = (Vec::new(), 0, String::new());
//! loop {
//!     let request = ListProductsRequest { page_size: 10, page_token };
//!     let page = catalog.list_products(with_deadline(request, deadline)).await?.into_inner();
//!     ids.extend(page.products.into_iter().map(|product| product.id));
//!     pages += 1;
//!     if page.next_page_token.is_empty() {
//!         break;
//!     }
//!     page_token = page.next_page_token;
//! }
//! assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids in order, none twice");
//! println!("{} products in {pages} pages", ids.len());
//!
//! // 3. An unknown id.
//! let status = catalog.get_product(get("sku-does-not-exist")).await.unwrap_err();
//! assert_eq!(status.code(), Code::NotFound);
//!
//! // 4. A deadline of our own, shorter than the backend is slow.
//! let mut chaos = ChaosServiceClient::connect(format!("http://{backend}")).await?;
//! let slow = SetFaultsRequest { latency_ms: 3_000, ..Default::default() };
//! chaos.set_faults(slow).await?;
//! let started = std::time::Instant::now();
//! let short = with_deadline(GetProductRequest { id: "sku-1003".into() }, Duration::from_millis(500));
//! let status = catalog.get_product(short).await.unwrap_err();
//! println!("deadline: {:?} {:?} after {:?}", status.code(), status.message(), started.elapsed());
//! assert_eq!(status.code(), Code::DeadlineExceeded);
//! assert!(started.elapsed() < Duration::from_secs(3), "answered before the backend");
//!
//! // 5. The backend fails: the gateway answers from its cache, until the
//! // circuit opens and the backend is not called at all.
//! let failing = SetFaultsRequest { error_rate: 1.0, ..Default::default() };
//! chaos.set_faults(failing).await?;
//! let mut provenance = Provenance::default();
//! for _ in 0..20 {
//!     let response = catalog.get_product(get("sku-1001")).await?;
//!     provenance = Provenance::of(response.metadata());
//!     assert_eq!(provenance.cache, Some(CacheStatus::Stale));
//!     if provenance.circuit.as_deref() == Some("open") {
//!         break;
//!     }
//! }
//! println!("stale: {provenance:?}");
//! assert_eq!(provenance.circuit.as_deref(), Some("open"));
//!
//! // 6. Nothing cached and the circuit open: UNAVAILABLE, and when to retry.
//! // (An id that does not exist: the gateway never caches NOT_FOUND as an
//! // answer, and with the circuit open only the backend could say so.)
//! let status = catalog.get_product(get("sku-never-cached")).await.unwrap_err();
//! assert_eq!(status.code(), Code::Unavailable);
//! let delay = retry_delay(&status).expect("a RetryInfo");
//! println!("unavailable: retry in {delay:?}");
//! assert!(delay > Duration::ZERO);
//!
//! // 7. Clean up.
//! chaos.set_faults(SetFaultsRequest::default()).await?;
//! # Ok(())
//! # }
//! # mod stack {
//! #     use std::{error::Error, future::pending};
//! #     use tokio::net::TcpListener;
//! #     /// The stack named by CATALOG_GATEWAY and CATALOG_BACKEND, or else a
//! #     /// backend and a gateway started here, on free ports.
//! #     pub async fn addresses() -> Result<(String, String), Box<dyn Error>> {
//! #         match (std::env::var("CATALOG_GATEWAY"), std::env::var("CATALOG_BACKEND")) {
//! #             (Ok(gateway), Ok(backend)) => return Ok((gateway, backend)),
//! #             (Err(_), Err(_)) => {}
//! #             _ => return Err("set both CATALOG_GATEWAY and CATALOG_BACKEND, or neither".into()),
//! #         }
//! #         let listener = TcpListener::bind("127.0.0.1:0").await?;
//! #         let backend_addr = listener.local_addr()?;
//! #         let service = backend::Backend::new(backend::Catalog::bundled(), Default::default());
//! #         tokio::spawn(service.serve(listener, pending()));
//! #         let public = TcpListener::bind("127.0.0.1:0").await?;
//! #         let admin = TcpListener::bind("127.0.0.1:0").await?;
//! #         let gateway_addr = public.local_addr()?;
//! #         let config = gateway::Config::with_backend(format!("http://{backend_addr}").parse()?);
//! #         tokio::spawn(gateway::Gateway::new(&config)?.serve(public, admin, pending()));
//! #         Ok((gateway_addr.to_string(), backend_addr.to_string()))
//! #     }
//! # }
//! ```

use std::{error::Error, fmt, time::Duration};

pub use tonic::{Code, Request, Status, metadata::MetadataMap};
use tonic::{
    TimeoutExpired,
    transport::{Channel, Endpoint},
};
use tonic_types::StatusExt as _;
use tower::ServiceBuilder;

pub mod proto;

use proto::catalog::v1::{Money, catalog_service_client::CatalogServiceClient};

/// A client of `catalog.v1.CatalogService`, over one HTTP/2 connection that
/// reconnects by itself.
pub type CatalogClient = CatalogServiceClient<DeadlineChannel>;

/// A channel whose passed deadlines are `DEADLINE_EXCEEDED`.
///
/// tonic reports a deadline that passed on the client's side as `CANCELLED`
/// ("Timeout expired"). gRPC says `DEADLINE_EXCEEDED`, as the clients of the
/// other languages report it, and callers tell the two apart: `CANCELLED`
/// is a call that someone gave up on, not one that ran out of time.
pub type DeadlineChannel = tower::util::MapErr<Channel, fn(tonic::transport::Error) -> BoxError>;

type BoxError = Box<dyn Error + Send + Sync>;

fn deadline_exceeded(error: tonic::transport::Error) -> BoxError {
    let mut source: Option<&(dyn Error + 'static)> = Some(&error);
    while let Some(error) = source {
        if error.is::<TimeoutExpired>() {
            return Box::new(Status::deadline_exceeded("deadline exceeded"));
        }
        source = error.source();
    }
    Box::new(error)
}

/// How long [`connect`] waits for the connection before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the gateway (or the backend: they serve the same contract)
/// at `address`: `host:port`, or a URL such as `http://host:port`.
///
/// # Errors
///
/// If `address` is not a valid URI, or nothing accepts the connection
/// within 5 seconds.
pub async fn connect(address: &str) -> Result<CatalogClient, tonic::transport::Error> {
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let channel = Endpoint::from_shared(url)?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await?;
    let channel = ServiceBuilder::new()
        .map_err(deadline_exceeded as fn(_) -> _)
        .service(channel);
    Ok(CatalogServiceClient::new(channel))
}

/// `message` as a request that must be answered within `timeout`: the
/// deadline travels to the gateway (`grpc-timeout`), which gives its
/// backend call no more than what is left of it, and the client gives up
/// with `DEADLINE_EXCEEDED` when it passes.
pub fn with_deadline<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Where the cache says an answer came from: the gateway's `x-cache`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheStatus {
    /// Not from the cache: the backend answered just now, or the gateway
    /// refused the request itself.
    Miss,
    /// A cached answer within its fresh window; the backend was not called.
    Hit,
    /// The backend failed, timed out or its circuit is open: this is the
    /// last known good answer, `x-cache-age` old.
    Stale,
}

/// What the gateway says about an answer, success or error, in its response
/// metadata. The backend says nothing, so every field is `None` there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// `x-cache`; `None` if absent or of a value this client does not know.
    pub cache: Option<CacheStatus>,
    /// `x-cache-age`, in whole seconds: on `hit` and `stale` answers.
    pub age: Option<Duration>,
    /// `x-circuit-state`, the state of the method's circuit after the
    /// call: `closed`, `open`, `half_open`, or `forced_open`, `disabled`
    /// and `metrics_only` when an operator set it so.
    pub circuit: Option<String>,
}

impl Provenance {
    /// Reads `metadata`: a response's (`response.metadata()`), or an
    /// error's (`status.metadata()`, which holds its trailers).
    pub fn of(metadata: &MetadataMap) -> Self {
        let text = |key| metadata.get(key).and_then(|value| value.to_str().ok());
        Self {
            cache: text("x-cache").and_then(|value| match value {
                "miss" => Some(CacheStatus::Miss),
                "hit" => Some(CacheStatus::Hit),
                "stale" => Some(CacheStatus::Stale),
                _ => None,
            }),
            age: text("x-cache-age")
                .and_then(|value| value.parse().ok())
                .map(Duration::from_secs),
            circuit: text("x-circuit-state").map(str::to_owned),
        }
    }
}

/// How long to wait before trying again, when `status` says: the
/// `google.rpc.RetryInfo` detail that the gateway adds to `UNAVAILABLE`
/// while the method's circuit is open.
pub fn retry_delay(status: &Status) -> Option<Duration> {
    status.get_details_retry_info()?.retry_delay
}

/// An amount as a decimal number and its currency, `12.34 USD`: exact, as
/// `units` and `nanos` are; no float is involved.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.units < 0 || self.nanos < 0;
        let units = self.units.unsigned_abs();
        let nanos = self.nanos.unsigned_abs();
        let sign = if negative { "-" } else { "" };
        // Two decimals at least, as prices are written; more if the amount
        // has them.
        let mut fraction = format!("{nanos:09}");
        while fraction.len() > 2 && fraction.ends_with('0') {
            fraction.pop();
        }
        write!(f, "{sign}{units}.{fraction} {}", self.currency_code)
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    fn money(units: i64, nanos: i32) -> String {
        Money {
            currency_code: "USD".into(),
            units,
            nanos,
        }
        .to_string()
    }

    #[test]
    fn money_is_written_exactly() {
        assert_eq!(money(12, 340_000_000), "12.34 USD");
        assert_eq!(money(0, 5_000_000), "0.005 USD");
        assert_eq!(money(7, 0), "7.00 USD");
        assert_eq!(money(-1, -750_000_000), "-1.75 USD");
        assert_eq!(money(0, -10_000_000), "-0.01 USD");
        assert_eq!(
            money(i64::MAX, 999_999_999),
            "9223372036854775807.999999999 USD"
        );
    }

    #[test]
    fn provenance_reads_the_gateway_metadata() {
        let mut metadata = MetadataMap::new();
        assert_eq!(Provenance::of(&metadata), Provenance::default());
        metadata.insert("x-cache", MetadataValue::from_static("stale"));
        metadata.insert("x-cache-age", MetadataValue::from_static("42"));
        metadata.insert("x-circuit-state", MetadataValue::from_static("open"));
        assert_eq!(
            Provenance::of(&metadata),
            Provenance {
                cache: Some(CacheStatus::Stale),
                age: Some(Duration::from_secs(42)),
                circuit: Some("open".into()),
            }
        );
        metadata.insert("x-cache", MetadataValue::from_static("warm"));
        assert_eq!(Provenance::of(&metadata).cache, None);
    }
}
