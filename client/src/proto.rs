//! The code generated from the repository's `proto/`: the clients and
//! messages of each package.

/// `catalog.v1`: the product catalog that the gateway and the backend serve.
pub mod catalog {
    /// Version 1 of the catalog contract.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("catalog.v1");
    }
}

/// `backend.v1`: fault injection, served by the backend only (an operator
/// tool, to make it slow or failing on purpose).
pub mod backend {
    /// Version 1 of the fault-injection contract.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("backend.v1");
    }
}

/// `gateway.v1`: circuit and cache administration, served on the gateway's
/// admin listener only (an operator tool).
pub mod gateway {
    /// Version 1 of the gateway's admin contract.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("gateway.v1");
    }
}
