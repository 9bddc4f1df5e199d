//! A `redis-server` of the test's own, on a port of its own, that the test
//! can kill and restart.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running `redis-server`; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        Self::start_on(super::free_port()).await
    }

    /// Starts a server on `port`: no persistence, loopback only.
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, &[]).await
    }

    /// Starts a server on `port` with more `redis-server` arguments.
    ///
    /// Its directory is its own and starts empty: a replica writes the
    /// primary's snapshot there whatever `--save` says, and a server loads
    /// any snapshot it finds at start, so a shared or reused directory
    /// would litter the source tree and fill a restarted server.
    pub async fn start_with(port: u16, args: &[&str]) -> Self {
        let dir = Self::dir(port);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the redis-server's directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (see the README's test command)");
        let server = Self {
            port,
            child: Some(child),
        };
        server.wait_until_ready().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        *self = Self::start_on(self.port).await;
    }

    /// Sends one command (inline protocol) and returns the raw reply.
    pub fn command(&self, command: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        let mut reply = vec![0; 4096];
        let read = stream.read(&mut reply).unwrap();
        String::from_utf8_lossy(&reply[..read]).into_owned()
    }

    /// The number of keys stored.
    pub fn key_count(&self) -> u64 {
        let reply = self.command("DBSIZE");
        reply
            .trim()
            .trim_start_matches(':')
            .parse()
            .unwrap_or_else(|_| panic!("DBSIZE answered {reply:?}"))
    }

    fn dir(port: u16) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "resilient-catalog-redis-{}-{port}",
            std::process::id()
        ))
    }

    async fn wait_until_ready(&self) {
        Self::wait_for(self.port).await;
    }

    /// Waits until a Redis on `port` answers PING (or asks for a
    /// password, which means it is up too).
    pub async fn wait_for(port: u16) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let reply = command(port, "PING");
            if reply.starts_with("+PONG") || reply.starts_with("-NOAUTH") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(Self::dir(self.port));
    }
}

/// A Redis Cluster of the test's own: primaries and replicas on free ports,
/// each a `redis-server` in a directory of the cluster's, joined with
/// `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
    dir: std::path::PathBuf,
}

/// One node of a [`RedisCluster`].
pub struct RedisNode {
    pub port: u16,
    child: Option<Child>,
}

impl RedisNode {
    /// Kills the node at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl RedisCluster {
    /// Starts `primaries` primaries with `replicas` replicas each, and
    /// waits until every node reports the cluster up.
    pub async fn start(primaries: usize, replicas: usize) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "resilient-catalog-cluster-{}-{}",
            std::process::id(),
            super::free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let nodes: Vec<_> = (0..primaries * (1 + replicas))
            .map(|_| {
                let port = super::free_port();
                let child = Command::new("redis-server")
                    .current_dir(&dir)
                    .args(["--port", &port.to_string()])
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .args(["--cluster-node-timeout", "1000"])
                    // Replicas sync at once (not after the default 5 s
                    // batching delay), and any replica may fail over.
                    .args(["--repl-diskless-sync-delay", "0"])
                    .args(["--cluster-replica-validity-factor", "0"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server is installed");
                RedisNode {
                    port,
                    child: Some(child),
                }
            })
            .collect();
        let cluster = Self { nodes, dir };
        for node in &cluster.nodes {
            RedisServer::wait_for(node.port).await;
        }
        let addresses: Vec<_> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .await
            .expect("redis-cli is installed (it comes with redis-server)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        cluster.wait_until_ok().await;
        super::eventually("every replica to be in sync with its primary", || async {
            cluster
                .nodes
                .iter()
                .map(|node| command(node.port, "INFO replication"))
                .filter(|info| info.contains("role:slave"))
                .all(|info| info.contains("master_link_status:up"))
                .then_some(())
        })
        .await;
        cluster
    }

    /// The URL fred connects with: one node, and the others as hints.
    pub fn url(&self) -> String {
        let mut nodes = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port));
        let first = nodes.next().unwrap();
        let others: Vec<_> = nodes.map(|node| format!("node={node}")).collect();
        format!("redis-cluster://{first}?{}", others.join("&"))
    }

    /// The ports of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .filter(|node| command(node.port, "ROLE").contains("master"))
            .map(|node| node.port)
            .collect()
    }

    /// The keys stored across the primaries.
    pub fn key_count(&self) -> u64 {
        self.primaries()
            .into_iter()
            .map(|port| {
                let reply = command(port, "DBSIZE");
                reply
                    .trim()
                    .trim_start_matches(':')
                    .parse::<u64>()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub async fn wait_until_ok(&self) {
        super::eventually("the Redis cluster to be up", || async {
            self.nodes
                .iter()
                .filter(|node| node.is_running())
                .all(|node| command(node.port, "CLUSTER INFO").contains("cluster_state:ok"))
                .then_some(())
        })
        .await;
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends one inline command to a Redis on `port` and returns the reply.
pub fn command(port: u16, command: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    if stream
        .write_all(format!("{command}\r\n").as_bytes())
        .is_err()
    {
        return String::new();
    }
    let mut reply = vec![0; 64 * 1024];
    let read = stream.read(&mut reply).unwrap_or(0);
    String::from_utf8_lossy(&reply[..read]).into_owned()
}
