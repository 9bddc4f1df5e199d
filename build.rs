//! Compiles every `.proto` file under `proto/` with protox (pure Rust, so no
//! system `protoc` is needed), generates the tonic code for all of them, and
//! writes one encoded file descriptor set per proto package for server
//! reflection: each listener then describes only the services it serves.

use std::{
    error::Error,
    fs,
    path::{Path, PathBuf},
};

const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let mut files = Vec::new();
    find_protos(Path::new(PROTO_ROOT), &mut files)?;
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    for file in &files {
        let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
        compiler.include_imports(true).include_source_info(true);
        compiler.open_file(file)?;
        let name = file
            .strip_prefix(PROTO_ROOT)?
            .to_string_lossy()
            .replace('\\', "/");
        let package = compiler
            .file_descriptor_set()
            .file
            .into_iter()
            .find(|f| f.name() == name)
            .map(|f| f.package().to_owned())
            .ok_or_else(|| format!("{} was not compiled", file.display()))?;
        let set = out_dir.join(format!("{}_descriptor.bin", package.replace('.', "_")));
        fs::write(set, compiler.encode_file_descriptor_set())?;
    }

    let all = protox::compile(&files, [PROTO_ROOT])?;
    tonic_prost_build::configure().compile_fds(all)?;
    Ok(())
}

fn find_protos(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            find_protos(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    Ok(())
}
