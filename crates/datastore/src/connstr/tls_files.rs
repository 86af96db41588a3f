//! TLS files named outside the connection string, merged into the translated settings.
//!
//! SPIRE's `DataStore "sql"` has `root_ca_path`, `client_cert_path` and `client_key_path` next
//! to `connection_string`. They become the engine's own URL parameters, with two rules: a file
//! named in both places is refused rather than one silently winning, and a CA file turns on
//! verification when the string chose no TLS mode (and is refused with a mode that would leave
//! it unused).

use super::{ConnEngine, ConnStringError};

/// CA and client certificate files for a server connection, in the form SPIRE's plugin config
/// gives them. Empty by default: the connection string alone decides TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CAs that verify the server (`root_ca_path`).
    pub root_ca: Option<String>,
    /// PEM file of the client certificate (`client_cert_path`).
    pub client_cert: Option<String>,
    /// PEM file of the client certificate's private key (`client_key_path`).
    pub client_key: Option<String>,
}

/// Puts the plugin setting's file into the parameter's slot, refusing a file given twice.
pub(super) fn merge(
    engine: ConnEngine,
    setting: &'static str,
    param: &'static str,
    given: Option<&String>,
    slot: &mut Option<String>,
) -> Result<(), ConnStringError> {
    let Some(given) = given else {
        return Ok(());
    };
    if slot.is_some() {
        return Err(ConnStringError::TlsFileTwice {
            engine,
            setting,
            param,
        });
    }
    *slot = Some(given.clone());
    Ok(())
}
