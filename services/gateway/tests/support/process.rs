//! The real binaries, started as a user starts them, and grpcurl.

use std::{
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::process::{Child, Command};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The path of a binary of this workspace, built beside the gateway.
pub fn binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_gateway")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds both binaries",
        path.display()
    );
    path
}

/// A running binary. It is killed when dropped; [`Process::terminate`]
/// stops it the way an orchestrator does.
pub struct Process {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `name` with `args` and extra environment variables; its
    /// output goes to a log file that failures print.
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!(
            "resilient-catalog-{name}-{}-{}.log",
            std::process::id(),
            super::free_port()
        ));
        let file = File::create(&log).expect("a log file");
        let child = Command::new(binary(name))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Self {
            name: name.into(),
            child,
            log,
        }
    }

    /// What the process has written so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `addr` reports SERVING on grpc.health.v1.
    pub async fn wait_healthy(&mut self, addr: SocketAddr) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.output());
            }
            let mut health = HealthClient::new(super::channel(addr));
            if let Ok(response) = health.check(HealthCheckRequest::default()).await
                && response.into_inner().status() == ServingStatus::Serving
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not become healthy on {addr}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("the process is running");
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not stop after SIGTERM:\n{}",
                    self.name,
                    self.output()
                )
            })
            .expect("wait")
    }

    /// Waits for the process to exit on its own.
    pub async fn wait(&mut self) -> ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit:\n{}", self.name, self.output()))
            .expect("wait")
    }
}

/// The output of a grpcurl run.
pub struct GrpcurlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `grpcurl -plaintext <args>`.
pub async fn grpcurl(args: &[&str]) -> GrpcurlOutput {
    let output = Command::new("grpcurl")
        .arg("-plaintext")
        .args(["-max-time", "20"])
        .args(args)
        .output()
        .await
        .expect("grpcurl is installed (see the README's test command)");
    GrpcurlOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The samples of a Prometheus scrape, by series: `name{labels}` as the
/// exporter writes it.
pub struct Scrape {
    pub text: String,
}

impl Scrape {
    /// The value of `series`, if the scrape has it.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
    }

    /// The value of `series`, which must be there.
    pub fn get(&self, series: &str) -> f64 {
        self.value(series)
            .unwrap_or_else(|| panic!("no {series} in the scrape:\n{}", self.text))
    }
}

/// `GET /metrics` from `addr` over HTTP/1.1, as Prometheus scrapes it.
pub async fn scrape(addr: SocketAddr) -> Scrape {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {addr}: {error}"));
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the scrape answers")
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    // A body of known length, not chunked: the test reads it as it is.
    assert!(
        head.to_ascii_lowercase().contains("content-length:"),
        "{head}"
    );
    Scrape { text: body.into() }
}
