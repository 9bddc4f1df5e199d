//! Server reflection, in both protocol versions: `grpc.reflection.v1`, and
//! `v1alpha` for the grpcurl releases before 1.8.8 that speak only that.

use tonic_reflection::server::{
    Builder,
    v1::{ServerReflection, ServerReflectionServer},
    v1alpha::{
        ServerReflection as ServerReflectionAlpha,
        ServerReflectionServer as ServerReflectionAlphaServer,
    },
};

/// Describes the services of `descriptor_sets`, and the health service that
/// every listener serves.
fn builder<'a>(descriptor_sets: &[&'a [u8]]) -> Builder<'a> {
    descriptor_sets
        .iter()
        .chain([&tonic_health::pb::FILE_DESCRIPTOR_SET])
        .fold(Builder::configure(), |builder, set| {
            builder.register_encoded_file_descriptor_set(set)
        })
}

/// `grpc.reflection.v1` over `descriptor_sets`.
pub(crate) fn v1(
    descriptor_sets: &[&'static [u8]],
) -> ServerReflectionServer<impl ServerReflection> {
    builder(descriptor_sets)
        .build_v1()
        .expect("the descriptor sets are compiled in and valid")
}

/// `grpc.reflection.v1alpha` over `descriptor_sets`.
pub(crate) fn v1alpha(
    descriptor_sets: &[&'static [u8]],
) -> ServerReflectionAlphaServer<impl ServerReflectionAlpha> {
    builder(descriptor_sets)
        .build_v1alpha()
        .expect("the descriptor sets are compiled in and valid")
}
