//! Compiles the contract in the repository's `proto/` with protox (pure
//! Rust: no system `protoc`), client code only: a client needs neither the
//! servers nor the reflection descriptors.

use std::{error::Error, path::Path};

const PROTO_ROOT: &str = "../proto";
const FILES: [&str; 3] = [
    "catalog/v1/catalog.proto",
    "backend/v1/chaos.proto",
    "gateway/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let files = FILES.map(|file| Path::new(PROTO_ROOT).join(file));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
