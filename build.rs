//! Compiles the GoBGP API subset in `proto/` into a tonic client, without `protoc`: protox
//! parses the .proto files in pure Rust.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["gobgp.proto", "attribute.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(files)?;
    Ok(())
}
