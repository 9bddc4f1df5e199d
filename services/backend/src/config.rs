//! The backend's command line, parsed and checked once at start-up, so that
//! a bad value stops the process with a message naming the flag.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use resilient_catalog::grpc_code;
use tonic::Code;

use crate::chaos::FaultSettings;

/// The backend's settings. The binary's `--help` shows them.
#[derive(Clone, Debug, Parser)]
#[command(name = "backend")]
pub struct Config {
    /// The address (IP and port) to serve gRPC on: catalog, chaos, health and reflection.
    #[arg(
        long,
        env = "BACKEND_LISTEN",
        default_value = "0.0.0.0:50052",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// The address to serve Prometheus metrics on (`GET /metrics`), with
    /// health. Loopback by default: expose it on purpose.
    #[arg(
        long,
        env = "BACKEND_ADMIN_LISTEN",
        default_value = "127.0.0.1:50054",
        value_name = "ADDR"
    )]
    pub admin_listen: SocketAddr,

    /// A JSON catalog to serve instead of the bundled one: an object whose
    /// "products" array holds {"id", "title", "description", "category",
    /// "price": {"currency_code", "amount"}, "updated_at"} objects, with the
    /// amount a decimal string such as "12.34".
    #[arg(long, env = "BACKEND_CATALOG", value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// The probability, from 0 to 1, that a catalog call fails on purpose.
    /// Change it at run time with backend.v1.ChaosService/SetFaults.
    #[arg(
        long,
        env = "BACKEND_ERROR_RATE",
        default_value_t = 0.0,
        value_name = "RATE",
        value_parser = error_rate
    )]
    pub error_rate: f64,

    /// A delay added to every catalog call, in milliseconds (at most
    /// 600000).
    #[arg(
        long,
        env = "BACKEND_LATENCY_MS",
        default_value_t = 0,
        value_name = "MS",
        value_parser = clap::value_parser!(u32).range(..=FaultSettings::MAX_LATENCY.as_millis() as i64)
    )]
    pub latency_ms: u32,

    /// The gRPC status that failures injected by --error-rate carry, by name:
    /// UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED... (any
    /// case; not OK).
    #[arg(
        long,
        env = "BACKEND_ERROR_CODE",
        default_value = "UNAVAILABLE",
        value_name = "CODE",
        value_parser = error_code
    )]
    pub error_code: Code,
}

impl Config {
    /// The faults to inject from the start.
    pub fn faults(&self) -> FaultSettings {
        FaultSettings {
            error_rate: self.error_rate,
            latency: Duration::from_millis(self.latency_ms.into()),
            code: self.error_code,
        }
    }
}

/// Reads `--error-rate`, with the range rule of [`FaultSettings`].
fn error_rate(value: &str) -> Result<f64, String> {
    let error_rate = value
        .parse::<f64>()
        .map_err(|_| "not a number; use a probability such as 0.25".to_owned())?;
    FaultSettings {
        error_rate,
        ..FaultSettings::default()
    }
    .validate()
    .map(|settings| settings.error_rate)
    .map_err(|error| error.to_string())
}

/// Reads `--error-code`: a gRPC status code name, in any case, but not OK.
fn error_code(value: &str) -> Result<Code, String> {
    grpc_code::from_name(value)
        .filter(|code| *code != Code::Ok)
        .ok_or_else(|| {
            let names: Vec<_> = grpc_code::ALL[1..]
                .iter()
                .map(|code| grpc_code::name(*code))
                .collect();
            format!("not a gRPC failure code; use one of {}", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("backend").chain(args.iter().copied()))
    }

    #[test]
    fn the_defaults_serve_the_bundled_catalog_without_faults() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, "0.0.0.0:50052".parse().unwrap());
        assert_eq!(config.admin_listen, "127.0.0.1:50054".parse().unwrap());
        assert_eq!(config.catalog, None);
        assert_eq!(config.faults(), FaultSettings::default());
    }

    #[test]
    fn faults_are_read_from_flags() {
        let config = parse(&[
            "--error-rate",
            "0.5",
            "--latency-ms",
            "250",
            "--error-code",
            "internal",
            "--catalog",
            "products.json",
        ])
        .unwrap();
        assert_eq!(
            config.faults(),
            FaultSettings {
                error_rate: 0.5,
                latency: Duration::from_millis(250),
                code: Code::Internal,
            }
        );
        assert_eq!(config.catalog, Some(PathBuf::from("products.json")));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let cases: [(&[&str], &str); 8] = [
            (&["--error-rate", "1.5"], "--error-rate"),
            (&["--error-rate", "NaN"], "--error-rate"),
            (&["--error-rate", "lots"], "--error-rate"),
            (&["--latency-ms", "600001"], "--latency-ms"),
            (&["--error-code", "OK"], "--error-code"),
            (&["--error-code", "BROKEN"], "--error-code"),
            (&["--listen", "localhost"], "--listen"),
            (&["--admin-listen", "9090"], "--admin-listen"),
        ];
        for (args, flag) in cases {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(flag), "{args:?}: {error}");
        }
        let error = parse(&["--error-rate", "1.5"]).unwrap_err().to_string();
        assert!(error.contains("from 0 to 1"), "{error}");
        let error = parse(&["--error-code", "ok"]).unwrap_err().to_string();
        assert!(error.contains("UNAVAILABLE"), "{error}");
    }
}
