//! Skylight's wire protocols.
//!
//! `scheduler` and `greenlight` are Greenlight's public protocols, kept to the same
//! packages, services, messages and field numbers so that existing Greenlight clients work
//! against Skylight. `admin` is Skylight's own operator service on a local socket, `devices`
//! its tenants' device list and revocation. Every service and client decodes with
//! [`codec::Codec`].
#![allow(missing_docs)]

pub mod codec;
pub mod conventions;

/// The encoded `FileDescriptorSet` of every protocol here, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// Greenlight's node protocol: the `Node` and `Hsm` services.
pub mod greenlight {
    tonic::include_proto!("greenlight");
}

/// Greenlight's scheduler protocol: the `Scheduler`, `Debug` and `Pairing` services.
pub mod scheduler {
    tonic::include_proto!("scheduler");
}

/// Core Lightning's node interface (`cln.Node`), the part node-host serves, wire-compatible
/// with CLN's gRPC.
pub mod cln {
    tonic::include_proto!("cln");
}

/// Skylight's operator service, served on the scheduler's unix socket.
pub mod admin {
    tonic::include_proto!("skylight.admin");
}

/// Skylight's device service, on the scheduler's network port: list and revoke devices.
pub mod devices {
    tonic::include_proto!("skylight.devices");
}

/// Events from node-host's outbox to the scheduler, which delivers them as webhooks; served
/// by the scheduler on a unix socket in its data directory.
pub mod outbox {
    tonic::include_proto!("skylight.outbox");
}

/// Greenlight's credentials blob (`credentials.gfs`): a prost message that Greenlight's
/// clients read with `Credentials.from_bytes`.
pub mod credentials {
    /// The version Greenlight's clients write and expect.
    pub const CRED_VERSION: u32 = 1;

    /// Device credentials: certificate chain, private key, CA and rune.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Device {
        #[prost(uint32, tag = "1")]
        pub version: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub cert: Vec<u8>,
        #[prost(bytes = "vec", tag = "3")]
        pub key: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub ca: Vec<u8>,
        #[prost(string, tag = "5")]
        pub rune: String,
    }
}
