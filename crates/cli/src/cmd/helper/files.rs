//! The helper's three files, replaced atomically on every update.

use std::path::PathBuf;

use anyhow::Context;
use lanyard_spiffe::x509::{certs_to_pem, pkcs8_to_pem};
use lanyard_workload::X509Context;

use super::config::HelperConfig;

/// What one update wrote, for the log.
pub(crate) struct Written {
    /// The certificate file.
    pub(crate) svid: PathBuf,
    /// The SVID's SPIFFE ID.
    pub(crate) spiffe_id: String,
    /// The leaf's serial number, decimal.
    pub(crate) serial: String,
}

/// Writes the default SVID, its key (0600) and the bundle under `cert_dir`. Each file is
/// written to a temporary file in the same directory, synced, then renamed over the old one,
/// so a reader sees the old file or the new one, never half of either.
///
/// # Errors
///
/// A context without SVID or own bundle, or a file that cannot be written.
pub(crate) fn write(config: &HelperConfig, context: &X509Context) -> anyhow::Result<Written> {
    let svid = context
        .default_svid()
        .context("the Workload API sent no X509-SVID")?;
    let own_td = svid.spiffe_id().trust_domain();
    let own = context
        .bundle_for(&own_td)
        .with_context(|| format!("no bundle for the SVID's trust domain {own_td}"))?;

    let chain = svid.chain();
    let (leaf_part, intermediates) = if config.add_intermediates_to_bundle {
        (
            &chain[..1.min(chain.len())],
            chain.get(1..).unwrap_or_default(),
        )
    } else {
        (chain, &[][..])
    };
    let mut bundle = own.to_pem();
    bundle.push_str(&certs_to_pem(intermediates));
    if config.include_federated_domains {
        for federated in context
            .bundles
            .iter()
            .filter(|b| *b.trust_domain() != own_td)
        {
            bundle.push_str(&federated.to_pem());
        }
    }

    std::fs::create_dir_all(&config.cert_dir)
        .with_context(|| format!("cannot create {}", config.cert_dir.display()))?;
    let path = |name: &str| config.cert_dir.join(name);
    let svid_path = path(&config.svid_file_name);
    crate::svid_files::write_file(&svid_path, certs_to_pem(leaf_part).as_bytes(), 0o644)?;
    crate::svid_files::write_file(
        &path(&config.svid_key_file_name),
        pkcs8_to_pem(svid.key()).as_bytes(),
        0o600,
    )?;
    crate::svid_files::write_file(
        &path(&config.svid_bundle_file_name),
        bundle.as_bytes(),
        0o644,
    )?;
    Ok(Written {
        svid: svid_path,
        spiffe_id: svid.spiffe_id().to_string(),
        serial: lanyard_spiffe::x509::serial_of(svid.leaf()).unwrap_or_default(),
    })
}
