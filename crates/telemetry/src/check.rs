//! The checks on `health_checks {}` and `telemetry {}` that need no socket: the daemons run
//! them before binding and `validate` runs them without starting anything, so that both refuse
//! the same files with the same words.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::http::{HealthPaths, TelemetryError, check_paths};
use crate::{HealthChecks, Telemetry};

/// Checks the probe paths and that the health listener, the Prometheus exporter and the
/// process's other TCP listeners (`taken`, such as `("bind_port", 0.0.0.0:8081)`) do not
/// claim one port twice. Health and Prometheus on the same host, spelled the same, share a
/// listener; the same port under two spellings of one host (`localhost`, `127.0.0.1`) or under
/// a wildcard address cannot both be bound. Port 0 never conflicts.
///
/// # Errors
///
/// [`TelemetryError::Path`] as [`Endpoints::bind`](crate::Endpoints::bind) describes, and
/// [`TelemetryError::SamePort`] naming both settings.
pub fn check_listeners(
    health: &HealthChecks,
    telemetry: &Telemetry,
    taken: &[(&str, SocketAddr)],
) -> Result<(), TelemetryError> {
    let health_at = health
        .listener_enabled
        .then_some((health.bind_address.as_str(), health.bind_port));
    let metrics_at = telemetry
        .prometheus
        .as_ref()
        .map(|p| (p.host.as_str(), p.port));
    let shared = health_at.is_some() && health_at == metrics_at && health.bind_port != 0;
    if health.listener_enabled {
        let paths = HealthPaths {
            live: health.live_path.clone(),
            ready: health.ready_path.clone(),
        };
        check_paths(&paths, shared)?;
    }

    let mut claims: Vec<(String, Option<IpAddr>, String, u16)> = taken
        .iter()
        .map(|(key, addr)| {
            (
                (*key).to_owned(),
                Some(addr.ip()),
                addr.ip().to_string(),
                addr.port(),
            )
        })
        .collect();
    if let Some((host, port)) = health_at {
        claims.push((
            "health_checks bind_port".into(),
            ip_of(host),
            host.into(),
            port,
        ));
    }
    if let Some((host, port)) = metrics_at.filter(|_| !shared) {
        claims.push((
            "telemetry Prometheus port".into(),
            ip_of(host),
            host.into(),
            port,
        ));
    }
    for (i, (key, ip, host, port)) in claims.iter().enumerate() {
        for (other_key, other_ip, other_host, other_port) in &claims[..i] {
            if *port == 0 || port != other_port {
                continue;
            }
            let overlap = match (ip, other_ip) {
                (Some(a), Some(b)) => a == b || a.is_unspecified() || b.is_unspecified(),
                // A name other than localhost: only the same spelling is known to clash.
                _ => host == other_host,
            };
            if overlap {
                return Err(TelemetryError::SamePort {
                    first: format!("{other_key} {}", shown(other_host, *other_port)),
                    second: format!("{key} {}", shown(host, *port)),
                });
            }
        }
    }
    Ok(())
}

/// The address a host binds, when that is known without resolving: an IP literal, or
/// `localhost` (which the listeners bind as IPv4 loopback first).
fn ip_of(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
        .or_else(|| (host == "::").then_some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
}

fn shown(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Prometheus;

    fn health(host: &str, port: u16) -> HealthChecks {
        HealthChecks {
            listener_enabled: true,
            bind_address: host.into(),
            bind_port: port,
            ..HealthChecks::default()
        }
    }

    fn prometheus(host: &str, port: u16) -> Telemetry {
        Telemetry {
            prometheus: Some(Prometheus {
                host: host.into(),
                port,
            }),
        }
    }

    #[test]
    fn one_spelling_shares_a_listener() {
        check_listeners(
            &health("localhost", 9000),
            &prometheus("localhost", 9000),
            &[],
        )
        .unwrap();
    }

    #[test]
    fn refuses_two_spellings_of_one_host_on_one_port() {
        let err = check_listeners(
            &health("localhost", 9000),
            &prometheus("127.0.0.1", 9000),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "health_checks bind_port localhost:9000 and telemetry Prometheus port \
             127.0.0.1:9000 cannot both listen: give them different ports, or the same host \
             written the same way to share one listener"
        );
    }

    #[test]
    fn refuses_the_servers_port_on_a_wildcard() {
        let taken = [("bind_port", "0.0.0.0:8081".parse().unwrap())];
        let err = check_listeners(&health("localhost", 8081), &Telemetry::default(), &taken)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("bind_port 0.0.0.0:8081 and health_checks"),
            "{err}"
        );
    }

    #[test]
    fn refuses_metrics_as_a_probe_path_on_a_shared_listener() {
        let mut h = health("localhost", 9000);
        h.live_path = "/metrics".into();
        let err = check_listeners(&h, &prometheus("localhost", 9000), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be /metrics"), "{err}");
    }

    #[test]
    fn port_zero_never_clashes() {
        check_listeners(&health("127.0.0.1", 0), &prometheus("localhost", 0), &[]).unwrap();
    }
}
