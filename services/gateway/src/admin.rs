//! `gateway.v1.CircuitAdminService`: what the circuits look like, and the
//! operator's controls over them, on the admin listener only.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use resilient_catalog::{
    breaker::{Circuit, CircuitRegistry, CircuitSnapshot, CircuitState as State},
    proto::gateway::v1::{
        self as proto, CircuitState, CircuitTarget, DisableRequest, DisableResponse,
        ForceClosedRequest, ForceClosedResponse, ForceOpenRequest, ForceOpenResponse,
        ListCircuitsRequest, ListCircuitsResponse, MetricsOnlyRequest, MetricsOnlyResponse,
        ResetRequest, ResetResponse, WindowCounts,
        circuit_admin_service_server::CircuitAdminService, circuit_target::Target,
    },
};
use tonic::{Request, Response, Status};

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

fn to_proto(snapshot: CircuitSnapshot) -> proto::Circuit {
    let state = match snapshot.state {
        State::Closed => CircuitState::Closed,
        State::Open => CircuitState::Open,
        State::HalfOpen => CircuitState::HalfOpen,
        State::ForcedOpen => CircuitState::ForcedOpen,
        State::Disabled => CircuitState::Disabled,
        State::MetricsOnly => CircuitState::MetricsOnly,
    };
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
