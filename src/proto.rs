//! The code generated from `proto/`, one module per proto package, each with
//! the encoded file descriptor set that its server reflection serves.

/// `catalog.v1`: the product catalog that both services serve.
pub mod catalog {
    /// Version 1 of the catalog contract.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("catalog.v1");

        /// The descriptors of `catalog.v1` and its imports, for reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("catalog_v1_descriptor");

        /// The gRPC path of `GetProduct`.
        pub const GET_PRODUCT_PATH: &str = "/catalog.v1.CatalogService/GetProduct";
        /// The gRPC path of `ListProducts`.
        pub const LIST_PRODUCTS_PATH: &str = "/catalog.v1.CatalogService/ListProducts";
    }
}

/// `backend.v1`: the fault injection that only the backend serves.
pub mod backend {
    /// Version 1 of the fault-injection contract.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("backend.v1");

        /// The descriptors of `backend.v1` and its imports, for reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("backend_v1_descriptor");
    }
}

/// `gateway.v1`: the circuit administration of the gateway's admin listener.
pub mod gateway {
    /// Version 1 of the gateway's admin contract.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("gateway.v1");

        /// The descriptors of `gateway.v1` and its imports, for reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("gateway_v1_descriptor");
    }
}
