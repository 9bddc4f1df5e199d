//! What the gateway's `/metrics` adds to the RPC histograms: the circuits,
//! the answers by `x-cache`, and the cache's own work.
//!
//! All of it is counted anyway, in atomics the admin API reads too, so it
//! is read at scrape time rather than recorded twice on the request path.

use std::sync::atomic::Ordering::Relaxed;

use metrics::{counter, describe_counter, describe_gauge, gauge};
use resilient_catalog::{
    breaker::{Circuit, CircuitState},
    telemetry::metrics::{MetricsEndpoint, PrometheusHandle},
};

use crate::fallback::Fallback;

/// The endpoint of the admin listener: what `handle` recorded, and the
/// state of `fallback` at each scrape.
pub(crate) fn endpoint(handle: PrometheusHandle, fallback: &Fallback) -> MetricsEndpoint {
    describe();
    let fallback = fallback.clone();
    MetricsEndpoint::new(handle).observing(move || observe(&fallback))
}

fn describe() {
    describe_gauge!(
        "circuit_breaker_state",
        "1 for the state each circuit is in, 0 for the others."
    );
    describe_counter!(
        "circuit_breaker_calls_total",
        "Calls through each circuit, by outcome: success, failure, timeout, rejected (the circuit was open), short_circuited (half-open, every trial slot taken)."
    );
    describe_counter!(
        "circuit_breaker_slow_calls_total",
        "Calls through each circuit that took at least the slow-call duration, whatever their outcome."
    );
    describe_counter!(
        "gateway_answers_total",
        "Catalog answers by their x-cache metadata: hit (fresh from the cache), miss (from the backend, or an error) and stale (the last known good answer, the backend having failed)."
    );
    describe_counter!(
        "gateway_coalesced_calls_total",
        "Calls answered by another identical call's backend request."
    );
    describe_gauge!(
        "gateway_backend_requests_in_flight",
        "Distinct backend requests in the air."
    );
    describe_counter!(
        "gateway_revalidations_total",
        "Stale answers refreshed from the backend in the background."
    );
    describe_counter!(
        "gateway_cache_hits_total",
        "Cache lookups answered, by tier: memory or redis."
    );
    describe_counter!(
        "gateway_cache_misses_total",
        "Cache lookups that found nothing young enough."
    );
    describe_counter!(
        "gateway_cache_writes_total",
        "Answers offered to Redis, by result: written, skipped (identical to one written recently), dropped (too many writes pending), oversized."
    );
    describe_counter!(
        "gateway_cache_decode_failures_total",
        "Cache entries that did not decode, and were deleted."
    );
    describe_counter!(
        "gateway_cache_redis_errors_total",
        "Redis commands that failed or timed out."
    );
    describe_counter!(
        "gateway_cache_redis_skipped_total",
        "Redis commands not sent because the Redis circuit was open."
    );
}

fn observe(fallback: &Fallback) {
    for circuit in fallback.circuits.circuits() {
        observe_circuit(circuit);
    }
    if let Some(redis) = fallback.cache.redis_circuit() {
        observe_circuit(redis);
    }

    let answers = &fallback.counters;
    for (cache, count) in [
        ("hit", &answers.hits),
        ("miss", &answers.misses),
        ("stale", &answers.stale),
    ] {
        counter!("gateway_answers_total", "cache" => cache).absolute(count.load(Relaxed));
    }
    counter!("gateway_revalidations_total").absolute(answers.revalidations.load(Relaxed));
    counter!("gateway_coalesced_calls_total").absolute(fallback.coalescer.followers());
    gauge!("gateway_backend_requests_in_flight").set(fallback.coalescer.in_flight() as f64);

    let cache = fallback.cache.stats();
    counter!("gateway_cache_hits_total", "tier" => "memory").absolute(cache.local_hits);
    counter!("gateway_cache_hits_total", "tier" => "redis").absolute(cache.redis_hits);
    counter!("gateway_cache_misses_total").absolute(cache.misses);
    for (result, count) in [
        ("written", cache.writes),
        ("skipped", cache.skipped_writes),
        ("dropped", cache.dropped_writes),
        ("oversized", cache.oversized),
    ] {
        counter!("gateway_cache_writes_total", "result" => result).absolute(count);
    }
    counter!("gateway_cache_decode_failures_total").absolute(cache.decode_failures);
    counter!("gateway_cache_redis_errors_total").absolute(cache.redis_errors);
    counter!("gateway_cache_redis_skipped_total").absolute(cache.redis_skipped);
}

/// The state and lifetime counts of one circuit, labelled with its name.
fn observe_circuit(circuit: &'static Circuit) {
    let name = circuit.name();
    let current = circuit.state();
    for state in CircuitState::ALL {
        let value = if state == current { 1.0 } else { 0.0 };
        gauge!("circuit_breaker_state", "circuit" => name, "state" => state.as_str()).set(value);
    }
    let counts = circuit.lifetime();
    for (outcome, count) in [
        ("success", counts.successes),
        ("failure", counts.failures),
        ("timeout", counts.timeouts),
        ("rejected", counts.rejections),
        ("short_circuited", counts.short_circuits),
    ] {
        counter!("circuit_breaker_calls_total", "circuit" => name, "outcome" => outcome)
            .absolute(count);
    }
    counter!("circuit_breaker_slow_calls_total", "circuit" => name).absolute(counts.slow_calls);
}
