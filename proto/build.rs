//! Compiles the .proto files with protox (no system protoc) and generates
//! prost messages and tonic services.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/girder/dist/v1/dist.proto",
        "proto/girder/admin/v1/admin.proto",
        "proto/girder/rlog/v1/rlog.proto",
        "proto/girder/broker/v1/broker.proto",
        "proto/girder/broker/v1/retained.proto",
        "proto/girder/broker/v1/session.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".girder.dist.v1.Payload.data")
        .bytes(".girder.broker.v1")
        .compile_fds(fds)?;
    Ok(())
}
