//! The server address the agent connects to: a validated `host:port`.

use rustls_pki_types::ServerName;

use super::ConfigError;

/// A validated `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerAddress {
    /// As configured, for connecting and for messages.
    pub(crate) addr: String,
    /// The host part without IPv6 brackets, sent in the TLS handshake (the server's SVID is
    /// checked by SPIFFE ID, not by this name).
    pub(crate) name: ServerName<'static>,
}

impl ServerAddress {
    /// Splits and checks `host:port`.
    pub(crate) fn parse(value: &str) -> Result<Self, ConfigError> {
        let invalid = |rule| ConfigError::ServerAddress {
            value: value.to_string(),
            rule,
        };
        let (host, port) = value
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected host:port"))?;
        match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(invalid("the port must be a number from 1 to 65535")),
            Ok(_) => {}
        }
        let host = match host.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .ok_or_else(|| invalid("an IPv6 address must be written [addr]:port"))?,
            None if host.contains(':') => {
                return Err(invalid("an IPv6 address must be written [addr]:port"));
            }
            None => host,
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| invalid("the host is neither an IP address nor a DNS name"))?;
        Ok(Self {
            addr: value.to_string(),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_and_bracketed_ipv6() {
        let host = |s: &str| ServerAddress::parse(s).unwrap().name.to_str().into_owned();
        assert_eq!(host("127.0.0.1:8081"), "127.0.0.1");
        assert_eq!(host("spire.example:443"), "spire.example");
        assert_eq!(host("[::1]:8081"), "::1");
    }

    #[test]
    fn rejects_addresses_without_a_usable_port_or_host() {
        for bad in [
            "localhost",
            "localhost:0",
            "localhost:x",
            ":8081",
            "::1:8081",
            "[::1:8081",
        ] {
            let err = ServerAddress::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
