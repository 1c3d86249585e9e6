//! Generates the gRPC code with protox, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "greenlight.proto",
        "scheduler.proto",
        "admin.proto",
        "devices.proto",
        "cln.proto",
        "outbox.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    // Every service's descriptors, for server reflection (grpcurl lists and calls with it).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // A request that does not decode is the caller's INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::codec::Codec")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
