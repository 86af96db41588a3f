//! Upstream authorities: an operator's CA that signs the server's CA certificate, so that the
//! server's authorities are intermediates and the trust bundle holds the operator's roots
//! instead of the server's own certificates (SPIRE's UpstreamAuthority).
//!
//! [`DiskUpstream`] reads the operator's CA certificate, key and roots from PEM files, with the
//! semantics of SPIRE's `disk` plugin: without a bundle file the certificate must be
//! self-signed and is itself the root; with one, the certificate file holds the upstream CA
//! certificate followed by any certificates that lead to a root of the bundle.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use lanyard_spiffe::TrustDomain;
use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType,
};
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::authority::{BACKDATE, CA_COMMON_NAME, X509Authority};
use crate::encoding::{
    SharedKey, cert_time, public_key_from_spki, random_serial, subject, system_time,
};
use crate::error::{CaError, fmt_time};
use crate::operator_file::{MAX_OPERATOR_FILE_BYTES, read_operator_file, read_operator_text};

/// The certificates around an upstream-signed authority.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamChain {
    /// Certificates between the authority and a root, nearest first; they follow the authority
    /// in every X509-SVID chain.
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The upstream roots; they, not the authority, go into the trust bundle.
    pub roots: Vec<CertificateDer<'static>>,
}

/// A CA certificate signed by an upstream authority.
#[derive(Clone, Debug)]
pub struct UpstreamSigned {
    /// The server's CA certificate.
    pub cert: CertificateDer<'static>,
    /// What chains it to the upstream roots.
    pub chain: UpstreamChain,
}

/// Something that signs the server's CA certificates (a CA on disk; later a KMS or a remote
/// CA).
pub trait UpstreamAuthority: Send + Sync + fmt::Debug {
    /// Signs a CA certificate for `td` and the public key `public_key_der` (DER
    /// SubjectPublicKeyInfo), valid from `now` − 10 s for `ttl`, but never past the upstream's
    /// own notAfter.
    ///
    /// Profile (X509-SVID §4.1, §4.3): basicConstraints cA true (critical), keyUsage
    /// keyCertSign and cRLSign (critical), the single URI SAN `spiffe://<td>`, subject
    /// O=Lanyard, CN=Lanyard CA, a subject key identifier and an authority key identifier
    /// equal to the upstream's subject key identifier.
    ///
    /// # Errors
    ///
    /// [`CaError::Upstream`] when the upstream cannot sign (unreadable or expired credentials),
    /// [`CaError::InvalidTtl`] for a zero ttl, [`CaError::UnsupportedPublicKey`],
    /// [`CaError::Encoding`].
    fn mint_x509_ca(
        &self,
        td: &TrustDomain,
        public_key_der: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<UpstreamSigned, CaError>;
}

impl X509Authority {
    /// Has `upstream` sign a CA certificate for `key` (see
    /// [`UpstreamAuthority::mint_x509_ca`]) and returns the authority, which remembers the
    /// upstream chain.
    ///
    /// # Errors
    ///
    /// As [`UpstreamAuthority::mint_x509_ca`], and [`CaError::InvalidAuthority`] if what the
    /// upstream returned is not a CA of `td` for `key`.
    pub fn signed_by_upstream(
        td: &TrustDomain,
        key: Arc<KeyPair>,
        upstream: &dyn UpstreamAuthority,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Self, CaError> {
        let signed = upstream.mint_x509_ca(td, &key.subject_public_key_info(), ttl, now)?;
        let authority = Self::from_parts(signed.cert, key)?;
        if authority.trust_domain() != td {
            return Err(CaError::InvalidAuthority(format!(
                "upstream signed {} for trust domain '{}', not '{td}'",
                authority.serial_hex(),
                authority.trust_domain()
            )));
        }
        Ok(authority.with_upstream(Some(signed.chain)))
    }
}

/// Errors of loading or using upstream credentials. Each names the file and the rule it breaks.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A file cannot be read.
    #[error("cannot read upstream {what} {}: {source}", path.display())]
    Read {
        /// Which file ("certificate", "key", "bundle").
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("upstream {what} {} is unusable: {reason}", path.display())]
    Malformed {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error(
        "upstream key {} does not match the public key of the certificate in {}: give the key the certificate was issued for",
        key.display(), cert.display()
    )]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// The certificate cannot sign CA certificates.
    #[error("upstream certificate {} cannot sign a CA: {rule}", path.display())]
    NotCa {
        /// The certificate file.
        path: PathBuf,
        /// The rule it breaks.
        rule: String,
    },
    /// The certificate is not valid now.
    #[error(
        "upstream certificate {} is not valid at {now}: it is valid from {not_before} until {not_after}",
        path.display(), now = fmt_time(*now), not_before = fmt_time(*not_before),
        not_after = fmt_time(*not_after)
    )]
    NotValid {
        /// The certificate file.
        path: PathBuf,
        /// The time of the check.
        now: SystemTime,
        /// Start of its validity.
        not_before: SystemTime,
        /// End of its validity.
        not_after: SystemTime,
    },
    /// The certificate does not lead to a root.
    #[error("upstream certificate {} does not chain to a root: {reason}", path.display())]
    Chain {
        /// The certificate file.
        path: PathBuf,
        /// Which link is broken, and what to do.
        reason: String,
    },
}

/// Where SPIRE's `UpstreamAuthority "disk"` finds its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskUpstreamPaths {
    /// `cert_file_path`: the upstream CA certificate, then any certificates up to the roots.
    pub cert: PathBuf,
    /// `key_file_path`: the upstream CA's private key (PEM PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// `bundle_file_path`: the roots. Without it the certificate must be self-signed.
    pub bundle: Option<PathBuf>,
}

/// An upstream CA whose certificate and key are PEM files.
///
/// Like SPIRE's `disk` plugin it reads the files again before each signing, so a replaced
/// upstream CA takes effect without a restart; if the files have become unusable it keeps
/// signing with the credentials it loaded last, and says so at warn.
pub struct DiskUpstream {
    paths: DiskUpstreamPaths,
    loaded: Mutex<Arc<Loaded>>,
}

/// Credentials read from disk and checked.
struct Loaded {
    issuer: Issuer<'static, SharedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
    chain: UpstreamChain,
}

impl DiskUpstream {
    /// Loads and checks the files: the key is the certificate's, the certificate is a CA that
    /// may sign CAs (basicConstraints cA true without pathLen 0, keyUsage keyCertSign), it is
    /// valid at `now`, and it chains to the bundle's roots (or is self-signed without a
    /// bundle).
    ///
    /// # Errors
    ///
    /// [`UpstreamError`] naming the file and the broken rule.
    pub fn open(paths: DiskUpstreamPaths, now: SystemTime) -> Result<Self, UpstreamError> {
        let loaded = Loaded::read(&paths, now)?;
        Ok(Self {
            paths,
            loaded: Mutex::new(Arc::new(loaded)),
        })
    }

    /// The certificates the authorities it signs chain through and to.
    pub fn chain(&self) -> UpstreamChain {
        self.current().chain.clone()
    }

    /// End of the upstream certificate's validity; no CA it signs outlives it.
    pub fn not_after(&self) -> SystemTime {
        self.current().not_after
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.loaded.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the files again; keeps the previous credentials if they are now unusable.
    fn reload(&self, now: SystemTime) -> Arc<Loaded> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        match Loaded::read(&self.paths, now) {
            Ok(fresh) => *loaded = Arc::new(fresh),
            Err(error) => tracing::warn!(
                %error,
                "Upstream CA files are unusable; signing with the ones loaded before"
            ),
        }
        Arc::clone(&loaded)
    }
}

impl UpstreamAuthority for DiskUpstream {
    fn mint_x509_ca(
        &self,
        td: &TrustDomain,
        public_key_der: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<UpstreamSigned, CaError> {
        if ttl.is_zero() {
            return Err(CaError::InvalidTtl { what: "ca" });
        }
        let loaded = self.reload(now);
        if now < loaded.not_before || now >= loaded.not_after {
            return Err(UpstreamError::NotValid {
                path: self.paths.cert.clone(),
                now,
                not_before: loaded.not_before,
                not_after: loaded.not_after,
            }
            .into());
        }
        let public_key = public_key_from_spki(public_key_der)?;

        let not_before = now
            .checked_sub(BACKDATE)
            .unwrap_or(now)
            .max(loaded.not_before);
        // SPIRE issue #5097: a CA that outlives its upstream signs SVIDs nobody can verify.
        let wanted = now.checked_add(ttl).unwrap_or(loaded.not_after);
        let not_after = wanted.min(loaded.not_after);
        if wanted > not_after {
            tracing::warn!(
                upstream.not_after = %fmt_time(loaded.not_after),
                "New CA cut short by the upstream certificate's expiry; renew the upstream CA"
            );
        }

        let mut params = CertificateParams::default();
        params.not_before = cert_time(not_before)?;
        params.not_after = cert_time(not_after)?;
        params.serial_number = Some(random_serial()?);
        params.distinguished_name = subject(CA_COMMON_NAME);
        params.subject_alt_names = vec![SanType::URI(td.id_string().try_into()?)];
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.use_authority_key_identifier_extension = true;

        let cert = params.signed_by(&public_key, &loaded.issuer)?;
        Ok(UpstreamSigned {
            cert: cert.der().clone(),
            chain: loaded.chain.clone(),
        })
    }
}

impl fmt::Debug for DiskUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskUpstream")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Loaded {
    fn read(paths: &DiskUpstreamPaths, now: SystemTime) -> Result<Self, UpstreamError> {
        let cert_path = &paths.cert;
        let certs = read_certs("certificate", cert_path)?;
        let Some(upstream) = certs.first() else {
            return Err(malformed("certificate", cert_path, "no certificate".into()));
        };
        let x509 = parse("certificate", cert_path, upstream)?;
        check_can_sign_cas(cert_path, &x509)?;
        let not_before = system_time(x509.validity().not_before.timestamp());
        let not_after = system_time(x509.validity().not_after.timestamp());
        if now < not_before || now >= not_after {
            return Err(UpstreamError::NotValid {
                path: cert_path.clone(),
                now,
                not_before,
                not_after,
            });
        }

        let key_pem =
            read_operator_text(&paths.key, MAX_OPERATOR_FILE_BYTES).map_err(|source| {
                UpstreamError::Read {
                    what: "key",
                    path: paths.key.clone(),
                    source,
                }
            })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| {
            malformed(
                "key",
                &paths.key,
                format!("{e}: expected one PEM PKCS#8, SEC1 (EC) or PKCS#1 (RSA) private key"),
            )
        })?;
        if x509.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(UpstreamError::KeyMismatch {
                key: paths.key.clone(),
                cert: cert_path.clone(),
            });
        }

        let chain = match &paths.bundle {
            None => self_signed_root(cert_path, &certs, &x509)?,
            Some(bundle_path) => {
                let roots = read_certs("bundle", bundle_path)?;
                chain_to_roots(cert_path, &certs, roots)?
            }
        };
        let issuer = Issuer::from_ca_cert_der(upstream, SharedKey(Arc::new(key)))
            .map_err(|e| malformed("certificate", cert_path, e.to_string()))?;
        Ok(Self {
            issuer,
            not_before,
            not_after,
            chain,
        })
    }
}

/// Without a bundle, the one certificate is its own root.
fn self_signed_root(
    path: &Path,
    certs: &[CertificateDer<'static>],
    x509: &X509Certificate<'_>,
) -> Result<UpstreamChain, UpstreamError> {
    let not_self_signed = |why: &str| UpstreamError::Chain {
        path: path.to_path_buf(),
        reason: format!(
            "{why}: without bundle_file_path the certificate file must hold one self-signed \
             certificate; set bundle_file_path to the roots it chains to"
        ),
    };
    if certs.len() != 1 {
        return Err(not_self_signed(&format!(
            "it holds {} certificates",
            certs.len()
        )));
    }
    if x509.subject() != x509.issuer() || x509.verify_signature(None).is_err() {
        return Err(not_self_signed("it is not self-signed"));
    }
    Ok(UpstreamChain {
        intermediates: Vec::new(),
        roots: certs.to_vec(),
    })
}

/// Each certificate of the file must be signed by the next, and the last by a root (or be one).
fn chain_to_roots(
    path: &Path,
    certs: &[CertificateDer<'static>],
    roots: Vec<CertificateDer<'static>>,
) -> Result<UpstreamChain, UpstreamError> {
    let broken = |reason: String| UpstreamError::Chain {
        path: path.to_path_buf(),
        reason,
    };
    let parsed = certs
        .iter()
        .map(|c| parse("certificate", path, c))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, pair) in parsed.windows(2).enumerate() {
        if pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .is_err()
        {
            return Err(broken(format!(
                "certificate {} of the file is not signed by certificate {}: list the upstream \
                 CA first, then each issuer in turn",
                i + 1,
                i + 2
            )));
        }
    }

    let last = parsed
        .last()
        .ok_or_else(|| broken("no certificate".into()))?;
    let last_is_root = certs.last().is_some_and(|c| roots.contains(c));
    let signed_by_root = roots.iter().any(|root| {
        X509Certificate::from_der(root)
            .is_ok_and(|(_, r)| last.verify_signature(Some(r.public_key())).is_ok())
    });
    if !last_is_root && !signed_by_root {
        return Err(broken(format!(
            "no root of the bundle ({} certificates) signed {}: bundle_file_path must hold the \
             root that issued the upstream chain",
            roots.len(),
            last.subject()
        )));
    }
    Ok(UpstreamChain {
        intermediates: certs
            .iter()
            .filter(|c| !roots.contains(c))
            .cloned()
            .collect(),
        roots,
    })
}

fn check_can_sign_cas(path: &Path, x509: &X509Certificate<'_>) -> Result<(), UpstreamError> {
    let not_ca = |rule: &str| UpstreamError::NotCa {
        path: path.to_path_buf(),
        rule: rule.to_owned(),
    };
    let bc = x509
        .basic_constraints()
        .map_err(|e| not_ca(&e.to_string()))?
        .map(|bc| bc.value);
    match bc {
        Some(bc) if bc.ca && bc.path_len_constraint == Some(0) => {
            return Err(not_ca(
                "its basicConstraints pathLen is 0, so it may sign leaves only",
            ));
        }
        Some(bc) if bc.ca => {}
        _ => return Err(not_ca("it does not have basicConstraints cA true")),
    }
    let can_sign = x509
        .key_usage()
        .map_err(|e| not_ca(&e.to_string()))?
        .is_some_and(|ku| ku.value.key_cert_sign());
    if !can_sign {
        return Err(not_ca("it does not have keyUsage keyCertSign"));
    }
    Ok(())
}

fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, UpstreamError> {
    let pem = read_operator_file(path, MAX_OPERATOR_FILE_BYTES).map_err(|source| {
        UpstreamError::Read {
            what,
            path: path.to_path_buf(),
            source,
        }
    })?;
    lanyard_spiffe::x509::parse_pem_certs(&pem).map_err(|e| malformed(what, path, e.to_string()))
}

fn parse<'a>(
    what: &'static str,
    path: &Path,
    der: &'a CertificateDer<'_>,
) -> Result<X509Certificate<'a>, UpstreamError> {
    X509Certificate::from_der(der)
        .map(|(_, x)| x)
        .map_err(|e| malformed(what, path, format!("not an X.509 certificate: {e}")))
}

fn malformed(what: &'static str, path: &Path, reason: String) -> UpstreamError {
    UpstreamError::Malformed {
        what,
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
