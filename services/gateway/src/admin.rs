//! `gateway.v1.CircuitAdminService` (what the circuits look like, and the
//! operator's controls over them) and `gateway.v1.CacheAdminService` (what
//! the cache has done), on the admin listener only.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, SystemTime},
};

use resilient_catalog::{
    breaker::{Circuit, CircuitRegistry, CircuitSnapshot, CircuitState as State},
    proto::gateway::v1::{
        self as proto, CircuitState, CircuitTarget, DisableRequest, DisableResponse,
        ForceClosedRequest, ForceClosedResponse, ForceOpenRequest, ForceOpenResponse,
        GetCacheStatsRequest, GetCacheStatsResponse, ListCircuitsRequest, ListCircuitsResponse,
        MetricsOnlyRequest, MetricsOnlyResponse, ResetRequest, ResetResponse, WindowCounts,
        cache_admin_service_server::CacheAdminService,
        circuit_admin_service_server::CircuitAdminService, circuit_target::Target,
    },
};
use tonic::{Request, Response, Status};

use crate::fallback::Fallback;

/// Reads and controls the gateway's circuits.
#[derive(Clone, Debug)]
pub(crate) struct CircuitAdmin {
    pub(crate) circuits: Arc<CircuitRegistry>,
}

impl CircuitAdmin {
    /// Applies `action` to the circuits of `target`, and shows them after.
    fn control(
        &self,
        target: Option<CircuitTarget>,
        action: fn(&Circuit),
    ) -> Result<Vec<proto::Circuit>, Status> {
        let circuits = match target.and_then(|target| target.target) {
            Some(Target::Name(name)) => vec![self.circuits.get(&name).ok_or_else(|| {
                Status::not_found(format!(
                    "no circuit is called {name:?}; ListCircuits shows them"
                ))
            })?],
            Some(Target::All(true)) => self.circuits.circuits(),
            Some(Target::All(false)) | None => {
                return Err(Status::invalid_argument(
                    "set target.name to a circuit's name, or target.all to true",
                ));
            }
        };
        Ok(circuits
            .iter()
            .map(|circuit| {
                action(circuit);
                to_proto(circuit.snapshot())
            })
            .collect())
    }
}

#[tonic::async_trait]
impl CircuitAdminService for CircuitAdmin {
    async fn list_circuits(
        &self,
        _request: Request<ListCircuitsRequest>,
    ) -> Result<Response<ListCircuitsResponse>, Status> {
        let circuits = self
            .circuits
            .circuits()
            .iter()
            .map(|circuit| to_proto(circuit.snapshot()))
            .collect();
        Ok(Response::new(ListCircuitsResponse { circuits }))
    }

    async fn force_open(
        &self,
        request: Request<ForceOpenRequest>,
    ) -> Result<Response<ForceOpenResponse>, Status> {
        let circuits = self.control(request.into_inner().target, Circuit::force_open)?;
        Ok(Response::new(ForceOpenResponse { circuits }))
    }

    async fn force_closed(
        &self,
        request: Request<ForceClosedRequest>,
    ) -> Result<Response<ForceClosedResponse>, Status> {
        let circuits = self.control(request.into_inner().target, Circuit::force_closed)?;
        Ok(Response::new(ForceClosedResponse { circuits }))
    }

    async fn disable(
        &self,
        request: Request<DisableRequest>,
    ) -> Result<Response<DisableResponse>, Status> {
        let circuits = self.control(request.into_inner().target, Circuit::disable)?;
        Ok(Response::new(DisableResponse { circuits }))
    }

    async fn metrics_only(
        &self,
        request: Request<MetricsOnlyRequest>,
    ) -> Result<Response<MetricsOnlyResponse>, Status> {
        let circuits = self.control(request.into_inner().target, Circuit::metrics_only)?;
        Ok(Response::new(MetricsOnlyResponse { circuits }))
    }

    async fn reset(
        &self,
        request: Request<ResetRequest>,
    ) -> Result<Response<ResetResponse>, Status> {
        let circuits = self.control(request.into_inner().target, Circuit::reset)?;
        Ok(Response::new(ResetResponse { circuits }))
    }
}

/// Reads the cache's counters.
#[derive(Clone, Debug)]
pub(crate) struct CacheAdmin {
    pub(crate) fallback: Fallback,
}

#[tonic::async_trait]
impl CacheAdminService for CacheAdmin {
    async fn get_cache_stats(
        &self,
        _request: Request<GetCacheStatsRequest>,
    ) -> Result<Response<GetCacheStatsResponse>, Status> {
        let fallback = &self.fallback;
        let cache = fallback.cache.stats();
        let answers = &fallback.counters;
        Ok(Response::new(GetCacheStatsResponse {
            store: fallback.cache.store_name().into(),
            hit_answers: answers.hits.load(Relaxed),
            miss_answers: answers.misses.load(Relaxed),
            stale_answers: answers.stale.load(Relaxed),
            coalesced_requests: fallback.coalescer.followers(),
            revalidations: answers.revalidations.load(Relaxed),
            memory_hits: cache.local_hits,
            redis_hits: cache.redis_hits,
            lookup_misses: cache.misses,
            writes: cache.writes,
            skipped_writes: cache.skipped_writes,
            dropped_writes: cache.dropped_writes,
            oversized: cache.oversized,
            decode_failures: cache.decode_failures,
            redis_errors: cache.redis_errors,
            redis_skipped: cache.redis_skipped,
            redis_circuit_state: fallback
                .cache
                .redis_circuit()
                .map_or(CircuitState::Unspecified, |circuit| {
                    proto_state(circuit.state())
                })
                .into(),
        }))
    }
}

fn proto_state(state: State) -> CircuitState {
    match state {
        State::Closed => CircuitState::Closed,
        State::Open => CircuitState::Open,
        State::HalfOpen => CircuitState::HalfOpen,
        State::ForcedOpen => CircuitState::ForcedOpen,
        State::Disabled => CircuitState::Disabled,
        State::MetricsOnly => CircuitState::MetricsOnly,
    }
}

fn to_proto(snapshot: CircuitSnapshot) -> proto::Circuit {
    let state = proto_state(snapshot.state);
    let now = SystemTime::now();
    let duration = |delay: Duration| prost_types::Duration::try_from(delay).unwrap_or_default();
    let timestamp = |time: Option<SystemTime>| time.map(prost_types::Timestamp::from);
    proto::Circuit {
        name: snapshot.name.to_string(),
        state: state.into(),
        counts: Some(WindowCounts {
            successes: snapshot.counts.successes,
            failures: snapshot.counts.failures,
            rejections: snapshot.counts.rejections,
            timeouts: snapshot.counts.timeouts,
            slow_calls: snapshot.counts.slow_calls,
            short_circuits: snapshot.counts.short_circuits,
        }),
        failure_rate_percent: snapshot.failure_rate_percent,
        slow_call_rate_percent: snapshot.slow_call_rate_percent,
        retry_after: snapshot.next_trial_in.map(duration),
        time_in_state: Some(duration(snapshot.time_in_state)),
        state_since: timestamp(now.checked_sub(snapshot.time_in_state)),
        next_trial_time: timestamp(
            snapshot
                .next_trial_in
                .and_then(|delay| now.checked_add(delay)),
        ),
        consecutive_opens: snapshot.consecutive_opens,
        reset_timeout: Some(duration(snapshot.reset_timeout)),
    }
}
