//! The `x509pop` node attestor: an agent proves it holds the private key of a certificate that
//! chains to an operator's CA, and gets an agent ID and node selectors derived from that
//! certificate (SPIRE's `NodeAttestor "x509pop"`, `external_pki` mode).
//!
//! Checks, in order: at most `max_intermediates` certificates after the leaf; the leaf's key
//! usage allows digitalSignature and its key is EC P-256, EC P-384 or RSA (2048 to 8192 bits);
//! RFC 5280 path validation to the configured roots at the current time (any extended key
//! usage is accepted, as SPIRE accepts any); then a signature over a fresh nonce.

use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::SystemTime;

use lanyard_spiffe::{Selector, SpiffeId, TrustDomain, X509Bundle};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::leaf::{
    check_key_usage, common_name, describe, fingerprint, leaf_key, selectors, serial_hex,
};
use super::pop::{AttestationData, Challenge, LeafKey, PopError, Response};
use super::template::{AgentPathTemplate, TemplateValues};

/// The attestor's name: the attestation type on the wire and the selector type.
pub const X509POP: &str = "x509pop";

/// SPIRE's default for `max_intermediates`.
pub const DEFAULT_MAX_INTERMEDIATES: usize = 4;

static ALGORITHMS: LazyLock<WebPkiSupportedAlgorithms> = LazyLock::new(|| {
    rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
});

/// The server's `NodeAttestor "x509pop" { plugin_data { .. } }`, with its CA bundles read.
#[derive(Clone)]
pub struct X509popConfig {
    paths: Vec<PathBuf>,
    roots: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    template: AgentPathTemplate,
    max_intermediates: usize,
}

/// Why the x509pop settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum X509popConfigError {
    /// Neither `ca_bundle_path` nor `ca_bundle_paths`.
    #[error(
        "NodeAttestor \"x509pop\" needs ca_bundle_path or ca_bundle_paths: the CAs that \
             sign agent certificates"
    )]
    NoBundle,
    /// A bundle file cannot be read.
    #[error("x509pop CA bundle {path}: cannot read it: {reason}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said (part of the message, not a separate cause, so that
        /// a caller printing only the top message still shows it).
        reason: std::io::Error,
    },
    /// A bundle file holds no usable certificates.
    #[error("x509pop CA bundle {path}: {reason}", path = path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        reason: String,
    },
    /// `max_intermediates = 0`.
    #[error("max_intermediates 0: it must be at least 1")]
    MaxIntermediates,
}

impl X509popConfig {
    /// Reads the PEM CA bundles (SPIRE's `ca_bundle_path` / `ca_bundle_paths`); the
    /// template defaults to `/x509pop/{{ .Fingerprint }}` and `max_intermediates` to 4.
    ///
    /// # Errors
    ///
    /// [`X509popConfigError`] naming the file or setting and the rule.
    pub fn load(
        paths: Vec<PathBuf>,
        template: Option<AgentPathTemplate>,
        max_intermediates: Option<usize>,
    ) -> Result<Self, X509popConfigError> {
        if paths.is_empty() {
            return Err(X509popConfigError::NoBundle);
        }
        if max_intermediates == Some(0) {
            return Err(X509popConfigError::MaxIntermediates);
        }
        let mut roots = Vec::new();
        let mut anchors = Vec::new();
        for path in &paths {
            let pem = lanyard_ca::operator_file::read_operator_file(
                path,
                lanyard_ca::operator_file::MAX_OPERATOR_FILE_BYTES,
            )
            .map_err(|reason| X509popConfigError::Read {
                path: path.clone(),
                reason,
            })?;
            let parse = |reason: String| X509popConfigError::Parse {
                path: path.clone(),
                reason,
            };
            // The trust domain only labels the bundle; these CAs are not SPIFFE authorities.
            let td = TrustDomain::new("x509pop.invalid").map_err(|e| parse(e.to_string()))?;
            let bundle = X509Bundle::from_pem(td, &pem)
                .map_err(|e| parse(format!("not a PEM file of CA certificates: {e}")))?;
            for (index, cert) in bundle.authorities().iter().enumerate() {
                let anchor = webpki::anchor_from_trusted_cert(cert).map_err(|e| {
                    parse(format!("certificate {index} cannot be a trust anchor: {e}"))
                })?;
                anchors.push(anchor.to_owned());
                roots.push(cert.clone().into_owned());
            }
        }
        Ok(Self {
            paths,
            roots,
            anchors,
            template: template.unwrap_or_else(AgentPathTemplate::x509pop_default),
            max_intermediates: max_intermediates.unwrap_or(DEFAULT_MAX_INTERMEDIATES),
        })
    }

    /// Checks the agent's chain and makes the challenge; nothing is recorded yet.
    pub(crate) fn begin(
        &self,
        td: &TrustDomain,
        payload: &[u8],
        now: SystemTime,
    ) -> Result<Pending, AttestError> {
        let data: AttestationData = serde_json::from_slice(payload)
            .map_err(|e| AttestError::Payload(format!("not x509pop attestation JSON: {e}")))?;
        let Some((leaf_der, rest)) = data.certificates.split_first() else {
            return Err(AttestError::Payload("it holds no certificate".into()));
        };
        if rest.len() > self.max_intermediates {
            return Err(AttestError::Payload(format!(
                "it holds {} intermediate certificates: at most {} are accepted \
                 (max_intermediates)",
                rest.len(),
                self.max_intermediates
            )));
        }
        let (_, leaf) = X509Certificate::from_der(leaf_der).map_err(|e| {
            AttestError::Payload(format!("the leaf certificate does not parse: {e}"))
        })?;
        let described = describe(&leaf);
        check_key_usage(&leaf).map_err(|rule| AttestError::Leaf(described.clone(), rule))?;
        let key = leaf_key(&leaf).map_err(|rule| AttestError::Leaf(described.clone(), rule))?;

        let leaf_cert = CertificateDer::from(leaf_der.as_slice());
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let since_epoch = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| AttestError::Clock)?;
        let end_entity = EndEntityCert::try_from(&leaf_cert)
            .map_err(|e| AttestError::Leaf(described.clone(), format!("it does not parse: {e}")))?;
        let path = end_entity
            .verify_for_usage(
                ALGORITHMS.all,
                &self.anchors,
                &intermediates,
                UnixTime::since_unix_epoch(since_epoch),
                AnyEku,
                None,
                None,
            )
            .map_err(|e| AttestError::Untrusted {
                cert: described.clone(),
                why: untrusted_reason(&e),
                bundles: self.bundle_files(),
            })?;

        // Every certificate above the leaf on the validated path, the root included.
        let mut above: Vec<Vec<u8>> = path
            .intermediate_certificates()
            .map(|c| c.der().to_vec())
            .collect();
        if let Some(root) = self.root_of(path.anchor()) {
            above.push(root.to_vec());
        }

        let fingerprint = fingerprint(leaf_der);
        let common_name = common_name(&leaf);
        let serial = serial_hex(leaf.raw_serial());
        let rendered = self.template.render(&TemplateValues {
            plugin_name: X509POP,
            trust_domain: td.name(),
            fingerprint: &fingerprint,
            subject_common_name: &common_name,
            serial_number_hex: &serial,
        });
        let agent_id =
            SpiffeId::from_path(td, &format!("/spire/agent{rendered}")).map_err(|e| {
                AttestError::AgentId {
                    template: self.template.as_str().to_owned(),
                    path: rendered.clone(),
                    reason: e.to_string(),
                }
            })?;
        let selectors = selectors(td, &leaf, &common_name, &serial, &above)?;
        let challenge = key.challenge().map_err(AttestError::Pop)?;
        Ok(Pending {
            key,
            challenge,
            agent_id,
            selectors,
        })
    }

    /// The root certificate behind a validated path's anchor.
    fn root_of(&self, anchor: &TrustAnchor<'_>) -> Option<&CertificateDer<'static>> {
        self.anchors
            .iter()
            .position(|a| a == anchor)
            .and_then(|i| self.roots.get(i))
    }

    /// The CA bundle files, for the server's log (never for the peer).
    fn bundle_files(&self) -> String {
        self.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why path validation failed, in words an operator acts on.
fn untrusted_reason(e: &webpki::Error) -> String {
    let why = match e {
        webpki::Error::UnknownIssuer => "no certificate of the bundle issued it",
        webpki::Error::CertExpired { .. } => "it or a certificate above it has expired",
        webpki::Error::CertNotValidYet { .. } => "it or a certificate above it is not valid yet",
        webpki::Error::InvalidSignatureForPublicKey => "a signature in the chain is invalid",
        _ => "path validation failed",
    };
    format!("{why} ({e:?})")
}

impl fmt::Debug for X509popConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509popConfig")
            .field("ca_bundle_paths", &self.paths)
            .field("roots", &self.roots.len())
            .field("agent_path_template", &self.template)
            .field("max_intermediates", &self.max_intermediates)
            .finish()
    }
}

/// A trusted chain waiting for its proof of possession.
pub(crate) struct Pending {
    key: LeafKey,
    challenge: Challenge,
    agent_id: SpiffeId,
    selectors: Vec<Selector>,
}

/// The outcome of a successful x509pop attestation.
pub(crate) struct Attested {
    pub(crate) agent_id: SpiffeId,
    pub(crate) selectors: Vec<Selector>,
}

impl Pending {
    /// The challenge as sent on the wire.
    pub(crate) fn challenge_json(&self) -> Result<Vec<u8>, AttestError> {
        serde_json::to_vec(&self.challenge).map_err(|e| AttestError::Internal(e.to_string()))
    }

    /// Checks the agent's answer.
    pub(crate) fn finish(self, response: &[u8]) -> Result<Attested, AttestError> {
        let response: Response = serde_json::from_slice(response).map_err(|e| {
            AttestError::Payload(format!("the challenge response is not x509pop JSON: {e}"))
        })?;
        let nonce = self
            .challenge
            .ecdsa_signature
            .as_ref()
            .or(self.challenge.rsa_signature.as_ref())
            .map(|c| c.nonce.as_slice())
            .ok_or_else(|| AttestError::Internal("the challenge has no nonce".into()))?;
        self.key
            .verify(nonce, &response)
            .map_err(AttestError::Pop)?;
        Ok(Attested {
            agent_id: self.agent_id,
            selectors: self.selectors,
        })
    }
}

/// Why an x509pop attestation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttestError {
    /// The agent sent something malformed.
    #[error("x509pop attestation data: {0}")]
    Payload(String),
    /// The leaf breaks a rule of the attestor.
    #[error("x509pop certificate {0}: {1}")]
    Leaf(String, String),
    /// The chain does not validate. The message names the CA bundle files for the server's log;
    /// the agent's status leaves them out (see [`AttestError::status`]).
    #[error(
        "x509pop certificate {cert}: it does not chain to the x509pop CA bundle ({bundles}): {why}"
    )]
    Untrusted {
        /// The leaf, described by subject and serial.
        cert: String,
        /// Why path validation failed.
        why: String,
        /// The server's CA bundle files.
        bundles: String,
    },
    /// The template gives no valid SPIFFE ID for this certificate.
    #[error(
        "agent_path_template {template:?} gives the path {path:?} for this certificate, which is \
         not a valid agent ID path: {reason}"
    )]
    AgentId {
        /// The configured template.
        template: String,
        /// What it rendered to.
        path: String,
        /// Why the ID is invalid.
        reason: String,
    },
    /// The proof of possession failed.
    #[error("x509pop proof of possession: {0}")]
    Pop(PopError),
    /// The server's clock is before 1970.
    #[error("the server clock is before the unix epoch")]
    Clock,
    /// A bug.
    #[error("x509pop: {0}")]
    Internal(String),
}

impl AttestError {
    /// The gRPC status for the agent: its faults are InvalidArgument, trust failures
    /// PermissionDenied, ours Internal. An unauthenticated peer learns why its chain failed but
    /// not where the server keeps its CA files.
    pub(crate) fn status(&self) -> tonic::Status {
        let message = match self {
            AttestError::Untrusted { cert, why, .. } => format!(
                "x509pop certificate {cert}: it does not chain to the x509pop CA bundle of \
                 the server: {why}"
            ),
            _ => self.to_string(),
        };
        match self {
            AttestError::Payload(_) | AttestError::Leaf(..) => {
                tonic::Status::invalid_argument(message)
            }
            AttestError::Untrusted { .. } | AttestError::AgentId { .. } => {
                tonic::Status::permission_denied(message)
            }
            AttestError::Pop(PopError::Random) | AttestError::Clock | AttestError::Internal(_) => {
                tonic::Status::internal(message)
            }
            AttestError::Pop(_) => tonic::Status::permission_denied(message),
        }
    }
}

/// Accepts any extended key usage, or none, as SPIRE's x509pop does.
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "x509pop_tests.rs"]
mod tests;
