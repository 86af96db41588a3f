//! Writes an X.509 context to disk with SPIRE's file names, for `agent api fetch x509
//! --write` and the demo: `svid.N.pem` (leaf first, then intermediates), `svid.N.key`
//! (PKCS#8), `bundle.N.pem` (the SVID's own trust domain) and `federated_bundle.N.M.pem`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use lanyard_spiffe::{X509Bundle, X509Svid};

/// What was written for one SVID.
pub(crate) struct WrittenSvid {
    pub(crate) svid: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) bundle: PathBuf,
}

/// Writes every SVID of the context under `dir`; keys are readable by the owner only.
pub(crate) fn write(
    dir: &Path,
    svids: &[X509Svid],
    bundles: &[X509Bundle],
) -> anyhow::Result<Vec<WrittenSvid>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (n, svid) in svids.iter().enumerate() {
        let own_td = svid.spiffe_id().trust_domain();
        let own = bundles
            .iter()
            .find(|b| *b.trust_domain() == own_td)
            .with_context(|| format!("no bundle for the SVID's trust domain {own_td}"))?;
        let paths = WrittenSvid {
            svid: dir.join(format!("svid.{n}.pem")),
            key: dir.join(format!("svid.{n}.key")),
            bundle: dir.join(format!("bundle.{n}.pem")),
        };
        write_file(
            &paths.svid,
            lanyard_spiffe::x509::certs_to_pem(svid.chain()).as_bytes(),
            0o644,
        )?;
        write_file(
            &paths.key,
            lanyard_spiffe::x509::pkcs8_to_pem(svid.key()).as_bytes(),
            0o600,
        )?;
        write_file(&paths.bundle, own.to_pem().as_bytes(), 0o644)?;
        for (m, federated) in bundles
            .iter()
            .filter(|b| *b.trust_domain() != own_td)
            .enumerate()
        {
            let path = dir.join(format!("federated_bundle.{n}.{m}.pem"));
            write_file(&path, federated.to_pem().as_bytes(), 0o644)?;
        }
        written.push(paths);
    }
    Ok(written)
}

/// Writes through a fresh, exclusively created temporary file and a rename, so readers never
/// see half a key and a symlink planted in `dir` is never followed (see
/// [`crate::cmd::file_write::replace`]).
///
/// # Errors
///
/// The directory or the file cannot be written.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    Ok(crate::cmd::file_write::replace(path, contents, mode)?)
}
