//! Server reflection, so that grpcurl and other tools work without the
//! proto files: `grpc.reflection.v1`, and `v1alpha` for the grpcurl
//! releases before 1.8.8 that speak only that.
//!
//! Every listener also describes `grpc.health.v1`, which every listener
//! serves, and the `google.rpc` error details, so that a tool can decode
//! the `RetryInfo` in an `UNAVAILABLE` status.

use tonic_reflection::server::{
    Builder,
    v1::{ServerReflection, ServerReflectionServer},
    v1alpha::{
        ServerReflection as ServerReflectionAlpha,
        ServerReflectionServer as ServerReflectionAlphaServer,
    },
};

fn builder<'a>(descriptor_sets: &[&'a [u8]]) -> Builder<'a> {
    descriptor_sets
        .iter()
        .chain([
            &tonic_health::pb::FILE_DESCRIPTOR_SET,
            &tonic_types::pb::FILE_DESCRIPTOR_SET,
        ])
        .fold(Builder::configure(), |builder, set| {
            builder.register_encoded_file_descriptor_set(set)
        })
}

/// `grpc.reflection.v1`, describing the services of `descriptor_sets`.
///
/// # Panics
///
/// If a descriptor set does not decode: they are compiled in, and a test
/// checks them.
pub fn v1(descriptor_sets: &[&'static [u8]]) -> ServerReflectionServer<impl ServerReflection> {
    builder(descriptor_sets)
        .build_v1()
        .expect("the compiled-in descriptor sets decode")
}

/// `grpc.reflection.v1alpha`, describing the services of `descriptor_sets`.
///
/// # Panics
///
/// As [`v1`].
pub fn v1alpha(
    descriptor_sets: &[&'static [u8]],
) -> ServerReflectionAlphaServer<impl ServerReflectionAlpha> {
    builder(descriptor_sets)
        .build_v1alpha()
        .expect("the compiled-in descriptor sets decode")
}

#[cfg(test)]
mod tests {
    use crate::proto::{backend, catalog, gateway};

    #[test]
    fn every_descriptor_set_builds_both_versions() {
        for set in [
            catalog::v1::FILE_DESCRIPTOR_SET,
            backend::v1::FILE_DESCRIPTOR_SET,
            gateway::v1::FILE_DESCRIPTOR_SET,
        ] {
            super::builder(&[set]).build_v1().unwrap();
            super::builder(&[set]).build_v1alpha().unwrap();
        }
    }
}
