//! The code generated from `proto/`, one module per proto package, each with
//! the encoded file descriptor set that its server reflection serves.

use prost::Message as _;

/// A version of the messages in an encoded descriptor set: a hash of the
/// descriptors with their comments left out, so that it changes when a
/// message does and only then. Cached answers are keyed under it, so that
/// a deploy that changes a message never reads old entries as new ones.
pub fn schema_version(descriptor_set: &[u8]) -> String {
    let mut set = prost_types::FileDescriptorSet::decode(descriptor_set)
        .expect("a descriptor set compiled into this crate decodes");
    for file in &mut set.file {
        file.source_code_info = None;
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&set.encode_to_vec()))
}

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

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn the_schema_version_ignores_comments_and_follows_messages() {
        let version = schema_version(catalog::v1::FILE_DESCRIPTOR_SET);
        assert_eq!(version.len(), 16);
        assert_eq!(version, schema_version(catalog::v1::FILE_DESCRIPTOR_SET));

        let mut set =
            prost_types::FileDescriptorSet::decode(catalog::v1::FILE_DESCRIPTOR_SET).unwrap();
        let index = set
            .file
            .iter()
            .position(|f| f.package() == "catalog.v1")
            .unwrap();
        // A changed comment: the same version.
        if let Some(info) = set.file[index].source_code_info.as_mut() {
            info.location.clear();
        }
        assert_eq!(schema_version(&set.encode_to_vec()), version);
        // A new field: a new version.
        let product = set.file[index]
            .message_type
            .iter_mut()
            .find(|m| m.name() == "Product")
            .unwrap();
        let mut field = product.field[0].clone();
        field.name = Some("added".into());
        field.number = Some(99);
        product.field.push(field);
        assert_ne!(schema_version(&set.encode_to_vec()), version);
    }
}
