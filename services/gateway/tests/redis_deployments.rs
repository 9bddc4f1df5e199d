//! The Redis deployments `--redis-url` accepts, each real: a password, TLS
//! with a CA of the test's own, and Sentinel with a failover.

mod support;

use std::{path::Path, process::Command};

use gateway::Config;
use resilient_catalog::proto::gateway::v1::{
    GetCacheStatsRequest, cache_admin_service_client::CacheAdminServiceClient,
};
use support::{
    TestBackend, TestGateway, channel, eventually, free_port, gateway_config, get_product, meta,
    redis::{RedisServer, command},
};

/// Answers one product, then checks that a second gateway, which never saw
/// it, serves it stale from Redis once the backend fails.
async fn fallback_through_redis(backend: &TestBackend, config: impl Fn() -> Config) {
    let writer = TestGateway::start(config()).await;
    let fresh = writer
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap()
        .into_inner();
    writer.flush_cache().await;
    backend.set_error_rate(1.0).await;

    let reader = TestGateway::start(config()).await;
    let stale = reader
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(stale.into_inner(), fresh);
    let stats = CacheAdminServiceClient::new(channel(reader.admin))
        .get_cache_stats(GetCacheStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.redis_hits, 1, "served from Redis: {stats:?}");
    backend.set_error_rate(0.0).await;
}

#[tokio::test]
async fn a_password_in_the_url_or_in_its_own_flag() {
    let port = free_port();
    let _redis = RedisServer::start_with(port, &["--requirepass", "s3cret"]).await;
    let backend = TestBackend::start().await;

    fallback_through_redis(&backend, || {
        let mut config = gateway_config(backend.url());
        config.redis_url = Some(format!("redis://:s3cret@127.0.0.1:{port}"));
        config
    })
    .await;
    fallback_through_redis(&backend, || {
        let mut config = gateway_config(backend.url());
        config.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        config.redis_password = Some("s3cret".into());
        config
    })
    .await;
}

/// Makes a CA and a certificate for 127.0.0.1 signed by it, with openssl.
fn certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl is installed");
        assert!(
            status.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
}

#[tokio::test]
async fn tls_with_a_ca_of_our_own() {
    let dir = std::env::temp_dir().join(format!(
        "resilient-catalog-tls-{}-{}",
        std::process::id(),
        free_port()
    ));
    certificates(&dir);
    let (plain, tls) = (free_port(), free_port());
    let path = |file: &str| dir.join(file).display().to_string();
    let _redis = RedisServer::start_with(
        plain,
        &[
            "--tls-port",
            &tls.to_string(),
            "--tls-cert-file",
            &path("redis.pem"),
            "--tls-key-file",
            &path("redis.key"),
            "--tls-ca-cert-file",
            &path("ca.pem"),
            "--tls-auth-clients",
            "no",
        ],
    )
    .await;
    let backend = TestBackend::start().await;
    fallback_through_redis(&backend, || {
        let mut config = gateway_config(backend.url());
        config.redis_url = Some(format!("rediss://127.0.0.1:{tls}"));
        config.redis_tls_ca_file = Some(dir.join("ca.pem"));
        config
    })
    .await;
    // Nothing went over the plain port but the test's own PING.
    assert!(
        command(plain, "DBSIZE").starts_with(":1"),
        "the answer is in Redis"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sentinel_and_a_primary_that_fails_over() {
    let dir = std::env::temp_dir().join(format!(
        "resilient-catalog-sentinel-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (primary_port, replica_port) = (free_port(), free_port());
    let mut primary =
        RedisServer::start_with(primary_port, &["--repl-diskless-sync-delay", "0"]).await;
    let _replica = RedisServer::start_with(
        replica_port,
        &[
            "--replicaof",
            "127.0.0.1",
            &primary_port.to_string(),
            "--repl-diskless-sync-delay",
            "0",
        ],
    )
    .await;
    let sentinels: Vec<_> = (0..3)
        .map(|n| {
            let port = free_port();
            let conf = dir.join(format!("sentinel-{n}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nsentinel monitor primary 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds primary 1000\nsentinel failover-timeout primary 5000\n"
                ),
            )
            .unwrap();
            let child = tokio::process::Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server runs as a sentinel");
            (port, child)
        })
        .collect();
    for (port, _) in &sentinels {
        RedisServer::wait_for(*port).await;
    }
    eventually("the replica to be in sync", || async {
        command(replica_port, "INFO replication")
            .contains("master_link_status:up")
            .then_some(())
    })
    .await;
    eventually("the sentinels to know each other", || async {
        command(sentinels[0].0, "SENTINEL master primary")
            .contains("num-other-sentinels\r\n$1\r\n2\r\n")
            .then_some(())
    })
    .await;

    let url = format!(
        "redis-sentinel://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}&sentinelServiceName=primary",
        sentinels[0].0, sentinels[1].0, sentinels[2].0
    );
    let backend = TestBackend::start().await;
    let config = || {
        let mut config = gateway_config(backend.url());
        config.redis_url = Some(url.clone());
        config
    };
    let writer = TestGateway::start(config()).await;
    let fresh = writer
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap()
        .into_inner();
    writer.flush_cache().await;
    assert_eq!(
        primary.key_count(),
        1,
        "written through Sentinel to the primary"
    );
    eventually("the replica to hold the answer", || async {
        command(replica_port, "DBSIZE")
            .starts_with(":1")
            .then_some(())
    })
    .await;

    // The primary dies; the sentinels promote the replica.
    primary.kill();
    eventually("the sentinels to fail over", || async {
        command(sentinels[0].0, "SENTINEL get-master-addr-by-name primary")
            .contains(&replica_port.to_string())
            .then_some(())
    })
    .await;
    // Answers keep coming meanwhile, from the backend.
    writer
        .catalog()
        .get_product(get_product("sku-1002"))
        .await
        .unwrap();

    backend.set_error_rate(1.0).await;
    let reader = TestGateway::start(config()).await;
    let stale = reader
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(stale.into_inner(), fresh);
    drop(sentinels);
    let _ = std::fs::remove_dir_all(&dir);
}
