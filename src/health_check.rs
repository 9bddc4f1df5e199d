//! The `healthcheck` subcommand of both binaries: one `grpc.health.v1`
//! check of the process's own listener. Container images then need no
//! `grpc-health-probe` beside the binary, and the check reads the same
//! flags and environment as the server, so it finds the port by itself.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    process::ExitCode,
    time::Duration,
};

use tonic::transport::Endpoint;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Why a listener is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// Nothing accepted the connection.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The address checked.
        address: SocketAddr,
        /// Why not, with every cause: tonic's own message is only
        /// "transport error".
        reason: String,
    },
    /// The listener answered, with an error.
    #[error("{address}: health check failed: {} {}", crate::grpc_code::name(.status.code()), .status.message())]
    Failed {
        /// The address checked.
        address: SocketAddr,
        /// The error.
        status: tonic::Status,
    },
    /// The listener answered that it is not serving.
    #[error("{address}: {status:?}")]
    NotServing {
        /// The address checked.
        address: SocketAddr,
        /// What it answered.
        status: ServingStatus,
    },
    /// No answer in time.
    #[error("{address}: no answer within {timeout:?}")]
    Timeout {
        /// The address checked.
        address: SocketAddr,
        /// How long it waited.
        timeout: Duration,
    },
}

/// Checks that the server listening on `listen` reports `SERVING` for
/// `service` (`""`: the server as a whole), within `timeout`.
///
/// A listener bound to every interface (`0.0.0.0`, `::`) is checked on
/// loopback.
pub async fn check(listen: SocketAddr, service: &str, timeout: Duration) -> Result<(), Unhealthy> {
    let address = reachable(listen);
    let probe = async {
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .expect("an IP and a port make a valid URI")
            .connect()
            .await
            .map_err(|error| Unhealthy::Connect {
                address,
                reason: causes(&error),
            })?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|status| Unhealthy::Failed { address, status })?;
        match response.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            status => Err(Unhealthy::NotServing { address, status }),
        }
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or(Err(Unhealthy::Timeout { address, timeout }))
}

/// The `healthcheck` subcommand of the binary named `binary`: 0 when
/// [`check`] finds `listen` serving, 1 with the reason on stderr when not,
/// as container health checks expect.
pub async fn exit_code(binary: &str, listen: SocketAddr, timeout: Duration) -> ExitCode {
    match check(listen, "", timeout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(unhealthy) => {
            eprintln!("{binary}: {unhealthy}");
            ExitCode::FAILURE
        }
    }
}

/// `error` and its sources, joined by `: `.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    let mut last = text.clone();
    while let Some(cause) = source {
        let message = cause.to_string();
        // hyper's errors repeat their source's message.
        if message != last {
            text.push_str(": ");
            text.push_str(&message);
        }
        last = message;
        source = cause.source();
    }
    text
}

/// `listen`, with an unspecified IP replaced by loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tonic::service::Routes;

    use super::*;

    #[test]
    fn a_wildcard_listener_is_checked_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:50051".parse().unwrap()),
            "127.0.0.1:50051".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:50051".parse().unwrap()),
            "[::1]:50051".parse().unwrap()
        );
        assert_eq!(
            reachable("10.0.0.7:50051".parse().unwrap()),
            "10.0.0.7:50051".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn a_serving_listener_is_healthy_and_a_closed_port_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(crate::server::serve(
            listener,
            Routes::default(),
            &[],
            None,
            std::future::pending(),
        ));
        let timeout = Duration::from_secs(5);
        check(address, "", timeout).await.unwrap();
        let unknown = check(address, "no.such.Service", timeout)
            .await
            .unwrap_err();
        assert!(unknown.to_string().contains("NOT_FOUND"), "{unknown}");

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_address = closed.local_addr().unwrap();
        drop(closed);
        let error = check(closed_address, "", timeout).await.unwrap_err();
        assert!(matches!(error, Unhealthy::Connect { .. }), "{error}");
        assert!(error.to_string().contains("cannot connect"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_listener_that_never_answers_times_out() {
        // Accepts connections (the kernel does) but never speaks HTTP/2.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let error = check(address, "", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(error, Unhealthy::Timeout { .. }), "{error}");
        drop(listener);
    }
}
