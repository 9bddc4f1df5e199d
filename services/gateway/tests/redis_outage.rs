//! Redis is a helper, never a dependency: when it dies, restarts or is not
//! there yet, the gateway keeps answering whatever the backend can answer.

mod support;

use support::{
    TestBackend, TestGateway, eventually, free_port, gateway_config, get_product, meta,
    redis::RedisServer, start_with_redis,
};
use tonic::Code;

#[tokio::test]
async fn with_redis_killed_and_the_backend_healthy_answers_are_served() {
    let (mut redis, _backend, gateway) = start_with_redis().await;
    let mut catalog = gateway.catalog();
    catalog.get_product(get_product("sku-1001")).await.unwrap();

    redis.kill();
    for id in ["sku-1001", "sku-1002", "sku-1003", "sku-1001"] {
        let response = catalog.get_product(get_product(id)).await.unwrap();
        assert_eq!(meta(response.metadata(), "x-cache"), Some("miss"));
        assert_eq!(response.into_inner().product.unwrap().id, id);
    }
    gateway.flush_cache().await;
    assert!(
        {
            let stats = gateway.gateway_cache.stats();
            stats.redis_errors + stats.redis_skipped > 0
        },
        "the failed writes were counted"
    );
}

#[tokio::test]
async fn with_redis_killed_and_the_backend_down_the_memory_tier_answers_and_the_rest_is_unavailable()
 {
    let (mut redis, backend, gateway) = start_with_redis().await;
    let mut catalog = gateway.catalog();
    let fresh = catalog
        .get_product(get_product("sku-1001"))
        .await
        .unwrap()
        .into_inner();
    gateway.flush_cache().await;

    redis.kill();
    backend.server.stop().await;
    for _ in 0..5 {
        // The request's own deadline is 10s: a hang would show as
        // DEADLINE_EXCEEDED or CANCELLED.
        let stale = catalog.get_product(get_product("sku-1001")).await.unwrap();
        assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
        assert_eq!(stale.into_inner(), fresh);

        let status = catalog
            .get_product(get_product("sku-1002"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(meta(status.metadata(), "x-cache"), Some("miss"));
    }
}

#[tokio::test]
async fn a_gateway_started_before_redis_exists_works_and_uses_redis_once_it_is_up() {
    let port = free_port();
    let backend = TestBackend::start().await;
    let mut config = gateway_config(backend.url());
    config.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    let gateway = TestGateway::start(config).await;
    let mut catalog = gateway.catalog();

    // No Redis: answers still come, from the backend.
    let response = catalog.get_product(get_product("sku-1020")).await.unwrap();
    assert_eq!(meta(response.metadata(), "x-cache"), Some("miss"));

    let redis = RedisServer::start_on(port).await;
    // The gateway reconnects on its own; then a success lands in Redis.
    let fresh = eventually("the gateway to write to Redis", || async {
        let fresh = gateway
            .catalog()
            .get_product(get_product("sku-1020"))
            .await
            .unwrap()
            .into_inner();
        gateway.flush_cache().await;
        (redis.key_count() > 0).then_some(fresh)
    })
    .await;

    // And reads it back when the backend fails.
    backend.set_error_rate(1.0).await;
    let stale = catalog.get_product(get_product("sku-1020")).await.unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(stale.into_inner(), fresh);
}

#[tokio::test]
async fn after_a_redis_restart_the_cache_fills_again() {
    let (mut redis, backend, gateway) = start_with_redis().await;

    redis.restart().await; // empty, same port
    let fresh = eventually("the gateway to write to the restarted Redis", || async {
        let fresh = gateway
            .catalog()
            .get_product(get_product("sku-1021"))
            .await
            .ok()?
            .into_inner();
        gateway.flush_cache().await;
        (redis.key_count() > 0).then_some(fresh)
    })
    .await;

    backend.set_error_rate(1.0).await;
    let stale = gateway
        .catalog()
        .get_product(get_product("sku-1021"))
        .await
        .unwrap();
    assert_eq!(meta(stale.metadata(), "x-cache"), Some("stale"));
    assert_eq!(stale.into_inner(), fresh);
}
