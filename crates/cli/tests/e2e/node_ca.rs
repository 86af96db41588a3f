//! An operator's CA for x509pop node certificates and a server that trusts it, shared by the
//! x509pop and re-attestation tests.

use std::path::{Path, PathBuf};

use lanyard_testkit::{Lanyard, Server, ServerOptions};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::common::TD;

/// An operator's CA for node certificates, its PEM in the test directory.
pub struct NodeCa {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate, PEM.
    pub pem_path: PathBuf,
}

impl NodeCa {
    /// A new CA named `name`, its certificate written into `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let pem_path = dir.join(format!("{name}.pem"));
        std::fs::write(&pem_path, params.self_signed(&key).unwrap().pem()).unwrap();
        Self {
            params,
            key,
            pem_path,
        }
    }

    /// Writes a node certificate and key and an agent config naming them; returns the config
    /// path and the certificate's SHA-1 fingerprint.
    pub fn node(&self, dir: &Path, cn: &str) -> (PathBuf, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let cert_path = dir.join(format!("{cn}.crt.pem"));
        let key_path = dir.join(format!("{cn}.key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let conf = dir.join(format!("{cn}.conf"));
        std::fs::write(
            &conf,
            format!(
                "plugins {{\n  NodeAttestor \"x509pop\" {{\n    plugin_data {{\n      \
                 private_key_path = \"{}\"\n      certificate_path = \"{}\"\n    }}\n  }}\n}}\n",
                key_path.display(),
                cert_path.display()
            ),
        )
        .unwrap();
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            cert.der().as_ref(),
        );
        let fingerprint = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        (conf, fingerprint)
    }

    /// [`NodeCa::node`], returning the agent ID the server gives the node instead of the
    /// fingerprint (SPIRE's default `agent_path_template`).
    pub fn node_agent(&self, dir: &Path, cn: &str) -> (PathBuf, String) {
        let (conf, fingerprint) = self.node(dir, cn);
        (
            conf,
            format!("spiffe://{TD}/spire/agent/x509pop/{fingerprint}"),
        )
    }
}

/// A server whose config file enables x509pop with `ca`'s bundle.
pub fn server_trusting(l: &Lanyard, ca: &NodeCa) -> Server {
    server_trusting_with(l, ca, ServerOptions::default())
}

/// As [`server_trusting`], with `opts` for the rest.
pub fn server_trusting_with(l: &Lanyard, ca: &NodeCa, opts: ServerOptions) -> Server {
    let conf = l.path("server.conf");
    std::fs::write(
        &conf,
        format!(
            "plugins {{\n  NodeAttestor \"x509pop\" {{\n    plugin_data {{\n      \
             ca_bundle_path = \"{}\"\n    }}\n  }}\n}}\n",
            ca.pem_path.display()
        ),
    )
    .unwrap();
    l.start_server(ServerOptions {
        extra_args: vec!["--config".into(), conf.display().to_string()],
        ..opts
    })
}
