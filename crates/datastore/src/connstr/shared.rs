//! Pieces both engines' translators use: refusing a repeated key, and writing the user part of
//! the sqlx URL.

use super::{ConnEngine, ConnStringError, encode_component};

/// The keys a connection string has set, so that a repeated key is refused rather than one of
/// its values silently winning.
#[derive(Debug, Default)]
pub(super) struct SeenKeys(Vec<&'static str>);

impl SeenKeys {
    /// Records `key` as set.
    ///
    /// # Errors
    ///
    /// [`ConnStringError::DuplicateKey`] when `key` was set before.
    pub(super) fn record(
        &mut self,
        engine: ConnEngine,
        key: &'static str,
    ) -> Result<(), ConnStringError> {
        if self.0.contains(&key) {
            return Err(ConnStringError::DuplicateKey { engine, key });
        }
        self.0.push(key);
        Ok(())
    }
}

/// Appends `user[:password]@`, each part percent-encoded, to a URL being written. Nothing is
/// written when neither is set; an empty password counts as none.
pub(super) fn push_userinfo(out: &mut String, user: Option<String>, password: Option<String>) {
    let user = user.unwrap_or_default();
    let password = password.filter(|p| !p.is_empty());
    if !user.is_empty() || password.is_some() {
        out.push_str(&encode_component(&user));
        if let Some(password) = &password {
            out.push(':');
            out.push_str(&encode_component(password));
        }
        out.push('@');
    }
}
