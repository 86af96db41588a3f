//! Writing [`MyParams`] as the `mysql://` URL sqlx parses.

use url::form_urlencoded;

use super::params::{MyAddr, MyParams};
use super::{ENGINE, invalid};
use crate::connstr::shared::push_userinfo;
use crate::connstr::{ConnStringError, encode_component, is_dot_segment};

impl MyParams {
    /// The sqlx URL. Fails for a database name that cannot be a URL path (`.`, `..`) and, as a
    /// last check, for output that does not parse as a URL.
    pub(super) fn render(self) -> Result<String, ConnStringError> {
        let mut out = String::from("mysql://");
        push_userinfo(&mut out, self.user, self.password);

        // sqlx reads the host verbatim (no percent-decoding) and strips IPv6 brackets itself.
        // With a socket the host is a placeholder sqlx ignores.
        match &self.addr {
            MyAddr::Tcp { host, .. } if host.contains(':') => out.push_str(&format!("[{host}]")),
            MyAddr::Tcp { host, .. } => out.push_str(host),
            MyAddr::Socket(_) => out.push_str("localhost"),
        }
        if let MyAddr::Tcp {
            port: Some(port), ..
        } = &self.addr
        {
            out.push_str(&format!(":{port}"));
        }
        out.push('/');
        if let Some(db) = self.dbname.filter(|d| !d.is_empty()) {
            if is_dot_segment(&db) {
                return Err(invalid(
                    "dbname",
                    &db,
                    "\".\" and \"..\" cannot be a URL path",
                ));
            }
            out.push_str(&encode_component(&db));
        }

        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(mode) = self.ssl_mode {
            query.append_pair("ssl-mode", mode);
        }
        let socket = match &self.addr {
            MyAddr::Socket(path) => Some(path),
            MyAddr::Tcp { .. } => None,
        };
        for (key, value) in [
            ("ssl-ca", self.ssl_ca.as_ref()),
            ("ssl-cert", self.ssl_cert.as_ref()),
            ("ssl-key", self.ssl_key.as_ref()),
            ("socket", socket),
            ("charset", self.charset.as_ref()),
            ("collation", self.collation.as_ref()),
            ("timezone", self.timezone.as_ref()),
        ] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        if let Some(capacity) = self.statement_cache_capacity {
            query.append_pair("statement-cache-capacity", &capacity.to_string());
        }
        let query = query.finish();
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query);
        }

        url::Url::parse(&out).map_err(|e| ConnStringError::InvalidUrl {
            engine: ENGINE,
            reason: e.to_string(),
        })?;
        Ok(out)
    }
}
