//! The cache against a real `redis-server` (and a real Redis Cluster):
//! shared by replicas, throttled, robust to what Redis holds and to Redis
//! going away under load.

mod support;

use std::time::Duration;

use gateway::Config;
use prost::Message as _;
use resilient_catalog::{
    cache::{CacheConfig, KeySpace, LastKnownGood, Payload, RedisOptions},
    proto::{
        catalog::v1::{self as catalog, GET_PRODUCT_PATH, GetProductRequest},
        gateway::v1::{
            GetCacheStatsRequest, GetCacheStatsResponse,
            cache_admin_service_client::CacheAdminServiceClient,
        },
        schema_version,
    },
};
use support::{
    TestBackend, TestGateway, channel, eventually, gateway_config, get_product, meta,
    redis::{RedisCluster, RedisServer},
};
use tonic::Code;

fn with_redis(backend: &TestBackend, redis_url: String) -> Config {
    let mut config = gateway_config(backend.url());
    config.redis_url = Some(redis_url);
    config
}

async fn stats(gateway: &TestGateway) -> GetCacheStatsResponse {
    CacheAdminServiceClient::new(channel(gateway.admin))
        .get_cache_stats(GetCacheStatsRequest {})
        .await
        .expect("GetCacheStats")
        .into_inner()
}

/// The Redis key of a GetProduct answer, as a gateway with the default
/// namespace writes it.
fn key_of(id: &str) -> String {
    KeySpace::new(
        "catalog-gateway",
        &schema_version(catalog::FILE_DESCRIPTOR_SET),
    )
    .key(
        GET_PRODUCT_PATH,
        &GetProductRequest { id: id.into() }.encode_to_vec(),
    )
    .to_string()
}

#[tokio::test]
async fn replicas_share_answers_through_redis() {
    let redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let first = TestGateway::start(with_redis(&backend, redis.url())).await;
    let second = TestGateway::start(with_redis(&backend, redis.url())).await;

    let fresh = first
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap()
        .into_inner();
    first.flush_cache().await;
    backend.set_error_rate(1.0).await;

    // The second gateway never saw the answer; Redis did.
    let stale = second
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(stale.into_inner(), fresh);
    let counted = stats(&second).await;
    assert_eq!((counted.redis_hits, counted.memory_hits), (1, 0));
    assert_eq!(counted.store, "memory+redis");
}

#[tokio::test]
async fn an_identical_answer_is_not_rewritten_to_redis_until_the_interval_passes() {
    let redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let mut config = with_redis(&backend, redis.url());
    config.cache_rewrite_interval_ms = 60_000;
    let gateway = TestGateway::start(config).await;

    let mut catalog = gateway.catalog();
    catalog.get_product(get_product("sku-1001")).await.unwrap();
    gateway.flush_cache().await;
    for _ in 0..5 {
        catalog.get_product(get_product("sku-1001")).await.unwrap();
    }
    gateway.flush_cache().await;
    let counted = stats(&gateway).await;
    assert_eq!((counted.writes, counted.skipped_writes), (1, 5));
    assert_eq!(backend.calls(), 6, "the backend is asked every time");

    // A different answer is written at once.
    catalog.get_product(get_product("sku-1002")).await.unwrap();
    gateway.flush_cache().await;
    assert_eq!(stats(&gateway).await.writes, 2);
    assert_eq!(redis.key_count(), 2);
}

#[tokio::test]
async fn a_corrupted_entry_is_a_miss_counted_and_deleted() {
    let redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(with_redis(&backend, redis.url())).await;
    let key = key_of("sku-1001");
    assert!(
        redis
            .command(&format!("SET {key} not-an-entry"))
            .starts_with("+OK")
    );

    backend.set_error_rate(1.0).await;
    let status = gateway
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "a miss, not a crash: {status:?}"
    );
    assert_eq!(stats(&gateway).await.decode_failures, 1);
    eventually("the corrupted entry to be deleted", || async {
        redis
            .command(&format!("EXISTS {key}"))
            .starts_with(":0")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_entry_of_another_message_version_is_a_miss_counted_and_deleted() {
    let redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(with_redis(&backend, redis.url())).await;
    // A well-formed envelope whose payload is not a GetProductResponse:
    // field 1 as a varint where a message is expected.
    let cache = LastKnownGood::redis(
        &redis.url(),
        &RedisOptions::default(),
        &CacheConfig {
            keys: KeySpace::new(
                "catalog-gateway",
                &schema_version(catalog::FILE_DESCRIPTOR_SET),
            ),
            ..CacheConfig::default()
        },
    )
    .unwrap();
    let request = GetProductRequest {
        id: "sku-1001".into(),
    }
    .encode_to_vec();
    let key = cache.keys().key(GET_PRODUCT_PATH, &request);
    cache.put(
        key,
        Payload::Value(bytes::Bytes::from_static(&[0x08, 0x96, 0x01, 0x0a])),
        Duration::from_secs(60),
    );
    cache.flush().await;

    backend.set_error_rate(1.0).await;
    let status = gateway
        .catalog()
        .get_product(get_product("sku-1001"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(stats(&gateway).await.decode_failures, 1);
}

#[tokio::test]
async fn an_oversized_answer_is_not_cached() {
    let redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let mut config = with_redis(&backend, redis.url());
    config.cache_max_entry_bytes = 16;
    let gateway = TestGateway::start(config).await;

    let mut catalog = gateway.catalog();
    catalog.get_product(get_product("sku-1001")).await.unwrap();
    gateway.flush_cache().await;
    assert_eq!(redis.key_count(), 0);
    assert_eq!(stats(&gateway).await.oversized, 1);

    backend.set_error_rate(1.0).await;
    let status = catalog
        .get_product(get_product("sku-1001"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn a_new_schema_version_reads_no_old_entries() {
    let redis = RedisServer::start().await;
    let cache = |schema: &str| {
        LastKnownGood::redis(
            &redis.url(),
            &RedisOptions::default(),
            &CacheConfig {
                keys: KeySpace::new("catalog-gateway", schema),
                ..CacheConfig::default()
            },
        )
        .unwrap()
    };
    let (old, new) = (cache("1111111111111111"), cache("2222222222222222"));
    for cache in [&old, &new] {
        assert!(cache.wait_until_connected(Duration::from_secs(5)).await);
    }
    let request = GetProductRequest {
        id: "sku-1001".into(),
    }
    .encode_to_vec();
    old.put(
        old.keys().key(GET_PRODUCT_PATH, &request),
        Payload::Value(bytes::Bytes::from_static(b"old bytes")),
        Duration::from_secs(60),
    );
    old.flush().await;

    let minute = Duration::from_secs(60);
    assert!(
        new.get(&new.keys().key(GET_PRODUCT_PATH, &request), minute)
            .await
            .is_none()
    );
    assert_eq!(new.stats().misses, 1);
    // The old deployment still reads its own.
    let fresh_old = cache("1111111111111111");
    assert!(fresh_old.wait_until_connected(Duration::from_secs(5)).await);
    assert!(
        fresh_old
            .get(&fresh_old.keys().key(GET_PRODUCT_PATH, &request), minute)
            .await
            .is_some()
    );
}

#[tokio::test]
async fn redis_killed_and_restarted_under_load_fails_no_request() {
    let mut redis = RedisServer::start().await;
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(with_redis(&backend, redis.url())).await;

    let load: Vec<_> = (0..4)
        .map(|worker| {
            let mut catalog = gateway.catalog();
            tokio::spawn(async move {
                let (mut answered, mut failed) = (0, Vec::new());
                let stop = tokio::time::Instant::now() + Duration::from_secs(3);
                let mut n = 0;
                while tokio::time::Instant::now() < stop {
                    let id = format!("sku-{}", 1001 + (worker * 7 + n) % 36);
                    n += 1;
                    match catalog.get_product(get_product(&id)).await {
                        Ok(_) => answered += 1,
                        Err(status) => failed.push(status),
                    }
                }
                (answered, failed)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart().await;

    let mut total = 0;
    for worker in load {
        let (answered, failed) = worker.await.unwrap();
        assert!(
            failed.is_empty(),
            "requests failed while the backend was up: {failed:?}"
        );
        total += answered;
    }
    assert!(total > 100, "the load ran: {total} answers");
    // And Redis is used again once it is back.
    eventually("the cache to write to the restarted Redis", || async {
        gateway
            .catalog()
            .get_product(get_product("sku-1036"))
            .await
            .ok()?;
        gateway.flush_cache().await;
        (redis.key_count() > 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_redis_cluster_serves_the_fallback_and_survives_a_primary_failover() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let backend = TestBackend::start().await;
    let writer = TestGateway::start(with_redis(&backend, cluster.url())).await;

    let ids: Vec<_> = (1001..1013).map(|n| format!("sku-{n}")).collect();
    let mut answers = Vec::new();
    for id in &ids {
        answers.push(
            writer
                .catalog()
                .get_product(get_product(id))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    writer.flush_cache().await;
    assert_eq!(
        cluster.key_count(),
        ids.len() as u64,
        "every answer is in the cluster"
    );
    // Let the replicas catch up before a primary dies.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A primary dies. The backend is up: answers keep coming.
    let primary = cluster.primaries()[0];
    cluster
        .nodes
        .iter_mut()
        .find(|node| node.port == primary)
        .unwrap()
        .kill();
    let mut catalog = writer.catalog();
    for id in &ids {
        catalog
            .get_product(get_product(id))
            .await
            .expect("answered while Redis fails over");
    }

    // Its replica takes over; then a gateway that never saw the answers
    // serves them stale from the cluster when the backend fails.
    eventually("a replica to be promoted", || async {
        (cluster.primaries().len() == 3).then_some(())
    })
    .await;
    cluster.wait_until_ok().await;
    backend.set_error_rate(1.0).await;
    let reader = TestGateway::start(with_redis(&backend, cluster.url())).await;
    eventually(
        "every answer to be served stale from the cluster",
        || async {
            let mut catalog = reader.catalog();
            for (id, answer) in ids.iter().zip(&answers) {
                let stale = catalog.get_product(get_product(id)).await.ok()?;
                if meta(stale.metadata(), "x-cache") != Some("stale") || stale.get_ref() != answer {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    assert_eq!(stats(&reader).await.redis_hits, ids.len() as u64);
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_requests_nothing() {
    // Accepts connections, reads, never answers: a hung Redis.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let backend = TestBackend::start().await;
    let mut config = with_redis(&backend, format!("redis://127.0.0.1:{port}"));
    config.redis_timeout_ms = 100;
    let gateway = TestGateway::start(config).await;

    let mut catalog = gateway.catalog();
    for n in 0..30 {
        let id = format!("sku-{}", 1001 + n % 36);
        let answer = catalog.get_product(get_product(&id)).await.unwrap();
        assert_eq!(meta(answer.metadata(), "x-cache"), Some("miss"));
    }
    // The in-process tier still serves the fallback.
    backend.set_error_rate(1.0).await;
    let stale = catalog.get_product(get_product("sku-1001")).await.unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    // The writes waited in the background, and timed out there.
    gateway.flush_cache().await;
    let counted = stats(&gateway).await;
    assert_eq!(counted.writes, 0);
    assert!(
        counted.redis_errors + counted.redis_skipped + counted.dropped_writes > 0,
        "the hung Redis was noticed: {counted:?}"
    );
}

#[tokio::test]
async fn a_hundred_identical_requests_over_grpc_make_one_backend_call() {
    let backend = TestBackend::start().await;
    let gateway = TestGateway::start(gateway_config(backend.url())).await;
    backend.set_latency_ms(300).await;

    let requests: Vec<_> = (0..100)
        .map(|_| {
            let mut catalog = gateway.catalog();
            tokio::spawn(async move { catalog.get_product(get_product("sku-1001")).await })
        })
        .collect();
    for request in requests {
        let answer = request.await.unwrap().unwrap();
        assert_eq!(answer.into_inner().product.unwrap().id, "sku-1001");
    }
    assert_eq!(
        backend.calls(),
        1,
        "one call for a hundred identical requests"
    );
    assert_eq!(stats(&gateway).await.coalesced_requests, 99);
}
