//! A gRPC status can come in the headers of a trailers-only response or in
//! the trailers after the body. The gateway must see a failure either way.
//! The "backend" here is a bare HTTP/2 server that answers each call with
//! one scripted shape.

mod support;

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use resilient_catalog::proto::catalog::v1::GET_PRODUCT_PATH;
use support::{TestGateway, gateway_config, get_product};
use tokio::net::TcpListener;
use tonic::Code;

#[derive(Clone, Copy)]
enum Shape {
    /// `:status 200`, `grpc-status: 14` in the headers, end of stream.
    TrailersOnly,
    /// Headers, no message, then trailers with `grpc-status: 14`.
    StatusInTrailers,
    /// Headers, a whole message, then trailers with `grpc-status: 14`.
    MessageThenFailure,
}

async fn scripted_backend(shape: Shape) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_request: Request<Incoming>| async move {
                        Ok::<_, Infallible>(answer(shape))
                    });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn answer(shape: Shape) -> Response<Frames> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "14".parse().unwrap());
    trailers.insert("grpc-message", "scripted%20failure".parse().unwrap());
    let frames = match shape {
        Shape::TrailersOnly => vec![],
        Shape::StatusInTrailers => vec![Ok(Frame::trailers(trailers.clone()))],
        Shape::MessageThenFailure => {
            // A length-prefixed, empty GetProductResponse, then the status.
            let message = Bytes::from_static(&[0, 0, 0, 0, 0]);
            vec![
                Ok(Frame::data(message)),
                Ok(Frame::trailers(trailers.clone())),
            ]
        }
    };
    let mut response = Response::builder()
        .status(200)
        .header("content-type", "application/grpc");
    if let Shape::TrailersOnly = shape {
        response = response
            .header("grpc-status", "14")
            .header("grpc-message", "scripted%20failure");
    }
    response
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap()
}

async fn failures_seen(shape: Shape) {
    let backend = scripted_backend(shape).await;
    let gateway =
        TestGateway::start(gateway_config(format!("http://{backend}").parse().unwrap())).await;
    let status = gateway
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("backend failed with UNAVAILABLE: scripted failure"),
        "{}",
        status.message()
    );
    assert_eq!(gateway.circuit_failures(GET_PRODUCT_PATH).await, 1);
}

#[tokio::test]
async fn a_trailers_only_failure_counts() {
    failures_seen(Shape::TrailersOnly).await;
}

#[tokio::test]
async fn a_failure_in_the_trailers_counts() {
    failures_seen(Shape::StatusInTrailers).await;
}

#[tokio::test]
async fn a_failure_after_a_message_counts() {
    failures_seen(Shape::MessageThenFailure).await;
}
