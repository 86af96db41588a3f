//! Workload API endpoint addresses, as `SPIFFE_ENDPOINT_SOCKET` holds them (Workload Endpoint
//! §4): `unix:///absolute/path` (or `unix:/absolute/path`) and `tcp://IP:PORT`, nothing else.
//!
//! The parser is stricter than go-spiffe's: `unix://foo` (an authority instead of a path) is
//! refused, and so are host names for TCP, port 0, and percent-encoded socket paths.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// The environment variable clients fall back to when no address is configured.
pub const ENDPOINT_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Where a Workload API server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndpointAddr {
    /// A unix domain socket (preferred by the spec).
    Unix(PathBuf),
    /// A TCP address; the host is always an IP literal.
    Tcp(SocketAddr),
}

/// Why no endpoint address could be had.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// The address breaks a rule of Workload Endpoint §4.
    #[error("workload endpoint address {input:?}: {rule}")]
    Invalid {
        /// The address as given.
        input: String,
        /// The rule it breaks.
        rule: String,
    },
    /// Nothing was configured and the environment variable is unset or not unicode.
    #[error("no workload endpoint address: {ENDPOINT_ENV} is not set (or not valid unicode)")]
    NotConfigured,
}

impl EndpointAddr {
    /// Parses an address strictly (Workload Endpoint §4, RFC 3986).
    ///
    /// # Errors
    ///
    /// [`AddrError::Invalid`] naming the input and the rule it breaks.
    pub fn parse(s: &str) -> Result<Self, AddrError> {
        parse(s).map_err(|rule| AddrError::Invalid {
            input: s.to_string(),
            rule,
        })
    }

    /// Reads [`ENDPOINT_ENV`]; clients use it only when no address was configured.
    ///
    /// # Errors
    ///
    /// [`AddrError::NotConfigured`] when the variable is unset, [`AddrError::Invalid`] when
    /// its value is not a valid address.
    pub fn from_env() -> Result<Self, AddrError> {
        match std::env::var(ENDPOINT_ENV) {
            Ok(v) => Self::parse(&v),
            Err(_) => Err(AddrError::NotConfigured),
        }
    }
}

impl std::str::FromStr for EndpointAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        Self::parse(s)
    }
}

impl fmt::Display for EndpointAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            EndpointAddr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

fn parse(s: &str) -> Result<EndpointAddr, String> {
    if let Some(c) = s.chars().find(|c| c.is_control() || *c == ' ') {
        return Err(format!(
            "contains {c:?}: control characters and spaces are not allowed in a URI"
        ));
    }
    // Only scheme, authority and path may be set, for either scheme.
    if s.contains('?') {
        return Err("a query is not allowed".into());
    }
    if s.contains('#') {
        return Err("a fragment is not allowed".into());
    }
    if let Some(rest) = s.strip_prefix("unix:") {
        return parse_unix(rest).map(EndpointAddr::Unix);
    }
    if let Some(rest) = s.strip_prefix("tcp:") {
        return parse_tcp(rest).map(EndpointAddr::Tcp);
    }
    Err("the scheme must be unix or tcp (lowercase)".into())
}

/// `unix:` then either `//` + an empty authority + an absolute path, or an absolute path.
fn parse_unix(rest: &str) -> Result<PathBuf, String> {
    let path = match rest.strip_prefix("//") {
        Some("") => return Err("a unix address must include a socket path".into()),
        Some(after) if !after.starts_with('/') => {
            let authority = after.split('/').next().unwrap_or_default();
            return Err(if authority.contains('@') {
                "userinfo is not allowed".into()
            } else {
                format!(
                    "a unix address must not have an authority ({authority:?}); \
                     the form is unix:///absolute/path"
                )
            });
        }
        Some(after) => after,
        None => rest,
    };
    if !path.starts_with('/') {
        return Err("a unix address must hold an absolute path (unix:///path)".into());
    }
    if path.len() == 1 {
        return Err("a unix address must include a socket path".into());
    }
    if path.contains('%') {
        return Err("percent-encoded characters are not supported in socket paths".into());
    }
    if let Some(c) = path.chars().find(|c| !is_path_char(*c)) {
        return Err(format!(
            "contains {c:?}: a URI path allows only letters, digits, / and -._~!$&'()*+,;=:@"
        ));
    }
    Ok(PathBuf::from(path))
}

/// RFC 3986 `pchar` (without percent-encoding) or `/`.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-._~!$&'()*+,;=:@".contains(c)
}

/// `tcp://` + an IP literal host + a port, nothing else.
fn parse_tcp(rest: &str) -> Result<SocketAddr, String> {
    let Some(authority) = rest.strip_prefix("//") else {
        return Err("a tcp address must have the form tcp://IP:PORT".into());
    };
    if authority.is_empty() {
        return Err("a tcp address must include a host".into());
    }
    if authority.contains('@') {
        return Err("userinfo is not allowed".into());
    }
    if authority.contains('/') {
        return Err("a path is not allowed in a tcp address".into());
    }
    let (ip, port) = split_host_port(authority)?;
    let Some(port) = port else {
        return Err("the port must be set (tcp://IP:PORT)".into());
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?}: the port must be a number"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {port}: the port must be 1 to 65535")),
        Ok(port) => Ok(SocketAddr::new(ip, port)),
    }
}

/// Splits `host[:port]` where host is an IPv4 literal or a bracketed IPv6 literal.
fn split_host_port(authority: &str) -> Result<(IpAddr, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err("an IPv6 host must end with ']'".into());
        };
        let ip = host
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("host [{host}]: not an IPv6 address"))?;
        return match after {
            "" => Ok((IpAddr::V6(ip), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((IpAddr::V6(ip), Some(port))),
                None => Err(format!("{after:?} after the host: expected :PORT")),
            },
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) if port.contains(':') => {
            return Err(format!(
                "host {host:?}...: an IPv6 host must be in brackets (tcp://[::1]:PORT)"
            ));
        }
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let ip = host.parse::<Ipv4Addr>().map_err(|_| {
        format!("host {host:?}: the host must be an IP address, not a name (tcp://IP:PORT)")
    })?;
    Ok((IpAddr::V4(ip), port))
}

#[cfg(test)]
mod tests {

    use super::*;

    /// Asserts that `s` is refused, that the message quotes it, and that it names the rule.
    fn refused(s: &str, rule_part: &str) {
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

    fn unix(s: &str) -> EndpointAddr {
        EndpointAddr::Unix(s.into())
    }

    fn tcp(s: &str) -> EndpointAddr {
        EndpointAddr::Tcp(s.parse().unwrap())
    }

    // The valid rows of the table in spiffe-standards.md §6.1, and the IPv6 form.
    #[test]
    fn accepts_the_valid_rows_of_the_spec_table() {
        assert_eq!(
            EndpointAddr::parse("tcp://1.2.3.4:5").unwrap(),
            tcp("1.2.3.4:5")
        );
        assert_eq!(
            EndpointAddr::parse("unix:///tmp/agent.sock").unwrap(),
            unix("/tmp/agent.sock")
        );
        assert_eq!(
            EndpointAddr::parse("unix:/tmp/agent.sock").unwrap(),
            unix("/tmp/agent.sock")
        );
        assert_eq!(
            EndpointAddr::parse("tcp://[::1]:8000").unwrap(),
            tcp("[::1]:8000")
        );
    }

    // Each invalid row of the table in spiffe-standards.md §6.1, in its order.
    #[test]
    fn rejects_control_characters() {
        refused("\t", "control characters");
    }

    #[test]
    fn rejects_other_schemes() {
        refused("blah", "scheme must be unix or tcp");
        refused("UNIX:///tmp/x", "lowercase");
        refused("http://1.2.3.4:5", "scheme");
    }

    #[test]
    fn rejects_opaque_tcp() {
        refused("tcp:opaque", "tcp://IP:PORT");
    }

    #[test]
    fn rejects_tcp_without_host() {
        refused("tcp://", "must include a host");
    }

    #[test]
    fn rejects_query_and_fragment() {
        refused("tcp://1.2.3.4:5?whatever", "query is not allowed");
        refused("tcp://1.2.3.4:5#whatever", "fragment is not allowed");
        refused("unix://foo?whatever", "query is not allowed");
        refused("unix://foo#whatever", "fragment is not allowed");
    }

    #[test]
    fn rejects_userinfo() {
        refused("tcp://john:doe@1.2.3.4:5/path", "userinfo");
        refused("unix://john:doe@foo/path", "userinfo");
    }

    #[test]
    fn rejects_tcp_with_path() {
        refused("tcp://1.2.3.4:5/path", "path is not allowed");
    }

    #[test]
    fn rejects_tcp_host_names() {
        refused("tcp://foo", "must be an IP address");
        refused("tcp://localhost:80", "must be an IP address");
    }

    #[test]
    fn rejects_tcp_without_port() {
        refused("tcp://1.2.3.4", "port must be set");
        refused("tcp://[::1]", "port must be set");
        refused("tcp://1.2.3.4:", "must be a number");
    }

    #[test]
    fn rejects_opaque_unix() {
        refused("unix:opaque", "absolute path");
    }

    #[test]
    fn rejects_unix_without_path() {
        refused("unix://", "must include a socket path");
        refused("unix:///", "must include a socket path");
    }

    #[test]
    fn rejects_unix_with_an_authority() {
        // go-spiffe lets this pass; the spec forbids an authority.
        refused("unix://foo", "must not have an authority");
        refused("unix://foo/tmp/x", "must not have an authority");
    }

    #[test]
    fn rejects_bad_ports_and_unbracketed_ipv6() {
        refused("tcp://1.2.3.4:0", "1 to 65535");
        refused("tcp://1.2.3.4:65536", "1 to 65535");
        refused("tcp://1.2.3.4:+5", "must be a number");
        refused("tcp://::1:80", "must be in brackets");
        refused("tcp://[::1]x", "expected :PORT");
        refused("tcp://[::1:80", "end with ']'");
        refused("tcp://[1.2.3.4]:80", "not an IPv6 address");
    }

    #[test]
    fn rejects_characters_a_uri_path_cannot_hold() {
        refused("unix:///tmp/a%20b", "percent-encoded");
        refused("unix:///tmp/é", "a URI path allows only");
        refused("unix:///tmp/a\\b", "a URI path allows only");
    }

    #[test]
    fn reports_an_unset_environment_variable_by_name() {
        assert!(AddrError::NotConfigured.to_string().contains(ENDPOINT_ENV));
    }

    #[test]
    fn display_is_the_canonical_uri() {
        let addr = EndpointAddr::parse("unix:/run/lanyard/agent.sock").unwrap();
        assert_eq!(addr.to_string(), "unix:///run/lanyard/agent.sock");
        assert_eq!(
            "tcp://[::1]:8000"
                .parse::<EndpointAddr>()
                .unwrap()
                .to_string(),
            "tcp://[::1]:8000"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_string(s in "\\PC*") {
            let _ = EndpointAddr::parse(&s);
        }

        #[test]
        fn never_panics_on_near_misses_and_accepted_ones_round_trip(
            s in "(unix|tcp|UNIX|)(:|://|:///|:/)[\\[\\]0-9a-f.:/@%?#A-Za-z_ -]{0,24}"
        ) {
            if let Ok(addr) = EndpointAddr::parse(&s) {
                proptest::prop_assert_eq!(EndpointAddr::parse(&addr.to_string()).unwrap(), addr);
            }
        }
    }
}
