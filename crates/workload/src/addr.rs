//! Workload API endpoint addresses, as `SPIFFE_ENDPOINT_SOCKET` holds them (Workload Endpoint
//! §4): `unix:///absolute/path` (or `unix:/absolute/path`) and `tcp://IP:PORT`, nothing else.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The environment variable clients fall back to when no address is configured.
pub const ENDPOINT_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Where a Workload API server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointAddr {
    /// A unix domain socket (preferred by the spec).
    Unix(PathBuf),
    /// A TCP address; the host is always an IP literal.
    Tcp(SocketAddr),
}

/// Why an endpoint address was refused; the message quotes the input and names the rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("workload endpoint address {input:?}: {rule}")]
pub struct AddrError {
    input: String,
    rule: &'static str,
}

impl EndpointAddr {
    /// Parses an address strictly.
    ///
    /// # Errors
    ///
    /// [`AddrError`] naming the input and the rule it breaks.
    pub fn parse(s: &str) -> Result<Self, AddrError> {
        let fail = |rule| AddrError {
            input: s.to_string(),
            rule,
        };
        if s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(fail("control characters and spaces are not allowed"));
        }
        if s.contains('?') {
            return Err(fail("a query is not allowed"));
        }
        if s.contains('#') {
            return Err(fail("a fragment is not allowed"));
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            return parse_unix(rest).map(EndpointAddr::Unix).map_err(fail);
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            return parse_tcp(rest).map(EndpointAddr::Tcp).map_err(fail);
        }
        Err(fail("the scheme must be unix or tcp"))
    }

    /// Reads [`ENDPOINT_ENV`].
    ///
    /// # Errors
    ///
    /// When the variable is unset (the error says so) or its value is invalid.
    pub fn from_env() -> Result<Self, AddrError> {
        match std::env::var(ENDPOINT_ENV) {
            Ok(v) => Self::parse(&v),
            Err(_) => Err(AddrError {
                input: String::new(),
                rule: "SPIFFE_ENDPOINT_SOCKET is not set and no address was given",
            }),
        }
    }
}

fn parse_unix(rest: &str) -> Result<PathBuf, &'static str> {
    let path = match rest.strip_prefix("//") {
        // `unix://host/...`: a unix address must not have an authority.
        Some(after) if !after.starts_with('/') => {
            return Err(if after.is_empty() {
                "a unix address must include a path"
            } else {
                "a unix address must not have an authority (use unix:///absolute/path)"
            });
        }
        Some(after) => after,
        None => rest,
    };
    if !path.starts_with('/') {
        return Err("a unix address must be an absolute path (unix:///path)");
    }
    if path.len() == 1 {
        return Err("a unix address must include a socket path");
    }
    Ok(PathBuf::from(path))
}

fn parse_tcp(rest: &str) -> Result<SocketAddr, &'static str> {
    let Some(authority) = rest.strip_prefix("//") else {
        return Err("a tcp address must be tcp://IP:PORT");
    };
    if authority.is_empty() {
        return Err("a tcp address must include a host");
    }
    if authority.contains('@') {
        return Err("userinfo is not allowed");
    }
    if authority.contains('/') {
        return Err("a path is not allowed in a tcp address");
    }
    authority
        .parse::<SocketAddr>()
        .map_err(|_| "the host must be an IP address and the port must be set (tcp://IP:PORT)")
}

impl fmt::Display for EndpointAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            EndpointAddr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(s: &str, rule_part: &str) {
        let err = EndpointAddr::parse(s).unwrap_err().to_string();
        assert!(
            err.contains(rule_part),
            "{s:?} gave {err:?}, expected {rule_part:?}"
        );
        assert!(
            err.contains(&format!("{s:?}")),
            "error must quote the input: {err}"
        );
    }

    #[test]
    fn accepts_the_valid_forms() {
        assert_eq!(
            EndpointAddr::parse("unix:///tmp/agent.sock").unwrap(),
            EndpointAddr::Unix("/tmp/agent.sock".into())
        );
        assert_eq!(
            EndpointAddr::parse("unix:/tmp/agent.sock").unwrap(),
            EndpointAddr::Unix("/tmp/agent.sock".into())
        );
        assert_eq!(
            EndpointAddr::parse("tcp://1.2.3.4:5").unwrap(),
            EndpointAddr::Tcp("1.2.3.4:5".parse().unwrap())
        );
        assert_eq!(
            EndpointAddr::parse("tcp://[::1]:8000").unwrap(),
            EndpointAddr::Tcp("[::1]:8000".parse().unwrap())
        );
    }

    #[test]
    fn rejects_every_invalid_form_of_the_spec_table() {
        bad("\t", "control characters");
        bad("blah", "scheme must be unix or tcp");
        bad("tcp:opaque", "tcp://IP:PORT");
        bad("tcp://", "must include a host");
        bad("tcp://1.2.3.4:5?whatever", "query");
        bad("tcp://1.2.3.4:5#whatever", "fragment");
        bad("tcp://john:doe@1.2.3.4:5/path", "userinfo");
        bad("tcp://1.2.3.4:5/path", "path is not allowed");
        bad("tcp://foo", "must be an IP address");
        bad("tcp://localhost:80", "must be an IP address");
        bad("tcp://1.2.3.4", "port must be set");
        bad("unix:opaque", "absolute path");
        bad("unix://", "must include a path");
        bad("unix://foo?whatever", "query");
        bad("unix://foo#whatever", "fragment");
        bad("unix://john:doe@foo/path", "authority");
        bad("unix://foo", "authority");
        bad("UNIX:///tmp/x", "scheme");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_accepted_addresses_display_parseably(s in "\\PC*") {
            if let Ok(addr) = EndpointAddr::parse(&s) {
                proptest::prop_assert_eq!(EndpointAddr::parse(&addr.to_string()).unwrap(), addr);
            }
        }
    }
}
