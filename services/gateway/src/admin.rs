//! `gateway.v1.CircuitAdminService`: what the circuits look like, for
//! operators, on the admin listener only.

use std::sync::Arc;

use resilient_catalog::{
    breaker::{CircuitRegistry, CircuitSnapshot, CircuitState as State},
    proto::gateway::v1::{
        Circuit, CircuitState, ListCircuitsRequest, ListCircuitsResponse, WindowCounts,
        circuit_admin_service_server::CircuitAdminService,
    },
};
use tonic::{Request, Response, Status};

/// Reads the gateway's circuits.
#[derive(Clone, Debug)]
pub(crate) struct CircuitAdmin {
    pub(crate) circuits: Arc<CircuitRegistry>,
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
}

fn to_proto(snapshot: CircuitSnapshot) -> Circuit {
    let state = match snapshot.state {
        State::Closed => CircuitState::Closed,
        State::Open => CircuitState::Open,
        State::HalfOpen => CircuitState::HalfOpen,
    };
    Circuit {
        name: snapshot.name.to_string(),
        state: state.into(),
        counts: Some(WindowCounts {
            successes: snapshot.counts.successes,
            failures: snapshot.counts.failures,
            rejections: snapshot.counts.rejections,
        }),
        failure_rate_percent: snapshot.failure_rate_percent,
        retry_after: snapshot
            .retry_after
            .map(|delay| prost_types::Duration::try_from(delay).unwrap_or_default()),
    }
}
