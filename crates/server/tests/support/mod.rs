//! What the server's integration tests share: a server config in a temporary directory and a
//! channel to its admin socket.

use std::path::Path;

use lanyard_server::ServerConfig;
use lanyard_spiffe::TrustDomain;
use tonic::transport::Channel;

/// A server for `example.org` that keeps its state under `dir`, listens on a free loopback
/// port and serves the admin API at `dir/admin.sock`.
pub fn config(dir: &Path) -> ServerConfig {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let td = TrustDomain::new("example.org").unwrap();
    let mut config = ServerConfig::with_defaults(td, dir.join("data"));
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.socket_path = dir.join("admin.sock");
    config
}

/// A channel to the admin socket of the server `config` describes.
pub async fn admin(config: &ServerConfig) -> Channel {
    lanyard_workload::client::unix_channel(&config.socket_path)
        .await
        .unwrap()
}
