//! `backend.v1.ChaosService`: the operator's handle on the faults, over gRPC.

use std::time::Duration;

use resilient_catalog::proto::backend::v1::{
    self as pb, FaultCode, GetFaultsRequest, GetFaultsResponse, SetFaultsRequest,
    SetFaultsResponse, chaos_service_server::ChaosService,
};
use tonic::{Code, Request, Response, Status};

use super::{FaultSettings, Faults, InvalidFault};

/// Serves `backend.v1.ChaosService` over a shared [`Faults`].
#[derive(Clone, Debug)]
pub struct ChaosApi {
    /// The faults that the catalog service reads on every call.
    faults: Faults,
}

impl ChaosApi {
    /// Serves these faults; changes reach every clone of `faults`.
    pub fn new(faults: Faults) -> Self {
        Self { faults }
    }
}

#[tonic::async_trait]
impl ChaosService for ChaosApi {
    async fn set_faults(
        &self,
        request: Request<SetFaultsRequest>,
    ) -> Result<Response<SetFaultsResponse>, Status> {
        let settings = settings_from_request(request.get_ref())
            .and_then(|settings| self.faults.set(settings))
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        Ok(Response::new(SetFaultsResponse {
            faults: Some(to_proto(settings)),
        }))
    }

    async fn get_faults(
        &self,
        _request: Request<GetFaultsRequest>,
    ) -> Result<Response<GetFaultsResponse>, Status> {
        Ok(Response::new(GetFaultsResponse {
            faults: Some(to_proto(self.faults.get())),
        }))
    }
}

/// Reads a request; an unset code means `UNAVAILABLE`, as the contract says.
fn settings_from_request(request: &SetFaultsRequest) -> Result<FaultSettings, InvalidFault> {
    // `FaultCode` numbers are gRPC status numbers, and it has no `OK`.
    let code = match FaultCode::try_from(request.code) {
        Ok(FaultCode::Unspecified) => Code::Unavailable,
        Ok(code) => Code::from_i32(code as i32),
        Err(_) => return Err(InvalidFault::UnknownCode(request.code)),
    };
    Ok(FaultSettings {
        error_rate: request.error_rate,
        latency: Duration::from_millis(request.latency_ms.into()),
        code,
    })
}

/// The faults as the contract reports them. Latency is reported in whole
/// milliseconds, which is all a request can set.
fn to_proto(settings: FaultSettings) -> pb::Faults {
    pb::Faults {
        error_rate: settings.error_rate,
        latency_ms: u32::try_from(settings.latency.as_millis()).unwrap_or(u32::MAX),
        code: settings.code as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(error_rate: f64, latency_ms: u32, code: i32) -> Request<SetFaultsRequest> {
        Request::new(SetFaultsRequest {
            error_rate,
            latency_ms,
            code,
        })
    }

    #[tokio::test]
    async fn an_unset_code_means_unavailable() {
        let api = ChaosApi::new(Faults::default());
        let answer = api.set_faults(request(0.25, 40, 0)).await.unwrap();
        let expected = pb::Faults {
            error_rate: 0.25,
            latency_ms: 40,
            code: FaultCode::Unavailable as i32,
        };
        assert_eq!(answer.into_inner().faults, Some(expected));
        let read = api.get_faults(Request::new(GetFaultsRequest {})).await;
        assert_eq!(read.unwrap().into_inner().faults, Some(expected));
    }

    #[tokio::test]
    async fn codes_map_one_to_one() {
        let faults = Faults::default();
        let api = ChaosApi::new(faults.clone());
        api.set_faults(request(1.0, 0, FaultCode::Internal as i32))
            .await
            .unwrap();
        assert_eq!(faults.get().code, Code::Internal);
        api.set_faults(request(1.0, 0, FaultCode::Unauthenticated as i32))
            .await
            .unwrap();
        assert_eq!(faults.get().code, Code::Unauthenticated);
    }

    #[tokio::test]
    async fn invalid_requests_name_the_field_and_change_nothing() {
        let faults = Faults::default();
        let api = ChaosApi::new(faults.clone());
        let cases = [
            (request(2.0, 0, 0), "error_rate"),
            (request(f64::NAN, 0, 0), "error_rate"),
            (request(0.0, 600_001, 0), "latency_ms"),
            (request(0.0, 0, 17), "code 17"),
            (request(0.0, 0, -1), "code -1"),
        ];
        for (request, field) in cases {
            let status = api.set_faults(request).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().starts_with(field), "{}", status.message());
        }
        assert_eq!(faults.get(), FaultSettings::default());
    }
}
