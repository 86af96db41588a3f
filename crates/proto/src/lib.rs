//! Wire definitions for Lanyard: the SPIFFE Workload API, the parts of the SPIRE server API
//! that Lanyard serves, the gRPC health checking service and Lanyard's own server-to-agent
//! notifications, generated at build time from the `.proto` files in `proto/` with protox.
//!
//! The `.proto` files are written for Lanyard; each names the upstream definition it matches on
//! the wire, except `lanyard/`, which has none. This crate holds no logic: conversions and validation live with their owners.

#![forbid(unsafe_code)]

/// The SPIFFE Workload API (no protobuf package: its service is `SpiffeWorkloadAPI`).
#[expect(
    missing_docs,
    reason = "generated code; the .proto file documents every message"
)]
pub mod workload {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// The standard gRPC health checking service (`grpc.health.v1`).
#[expect(
    missing_docs,
    reason = "generated code; the .proto file documents every message"
)]
pub mod grpc {
    /// `grpc.health.*`.
    pub mod health {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
        }
    }
}

/// The SPIRE server API (`spire.api.*`).
#[expect(
    missing_docs,
    reason = "generated code; the .proto files document every message"
)]
pub mod spire {
    /// `spire.api.*`.
    pub mod api {
        /// `spire.api.types`: messages shared by the services.
        pub mod types {
            include!(concat!(env!("OUT_DIR"), "/spire.api.types.rs"));
        }
        /// `spire.api.server.*`: the server's services.
        pub mod server {
            /// `spire.api.server.agent.v1`.
            pub mod agent {
                /// Version 1.
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/spire.api.server.agent.v1.rs"));
                }
            }
            /// `spire.api.server.bundle.v1`.
            pub mod bundle {
                /// Version 1.
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/spire.api.server.bundle.v1.rs"));
                }
            }
            /// `spire.api.server.entry.v1`.
            pub mod entry {
                /// Version 1.
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/spire.api.server.entry.v1.rs"));
                }
            }
            /// `spire.api.server.localauthority.v1`.
            pub mod localauthority {
                /// Version 1.
                pub mod v1 {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/spire.api.server.localauthority.v1.rs"
                    ));
                }
            }
            /// `spire.api.server.svid.v1`.
            pub mod svid {
                /// Version 1.
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/spire.api.server.svid.v1.rs"));
                }
            }
            /// `spire.api.server.trustdomain.v1`.
            pub mod trustdomain {
                /// Version 1.
                pub mod v1 {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/spire.api.server.trustdomain.v1.rs"
                    ));
                }
            }
        }
    }
}

/// Lanyard's own services (`lanyard.*`), which have no upstream counterpart.
pub mod lanyard {
    /// `lanyard.agent.*`: what the server offers agents beyond the SPIRE API.
    pub mod agent {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/lanyard.agent.v1.rs"));
        }
    }
}
