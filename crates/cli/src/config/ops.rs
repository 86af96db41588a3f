//! The `telemetry {}` and `health_checks {}` blocks, shared by server and agent files.

use lanyard_telemetry::{HealthChecks, Prometheus, Telemetry};

use super::hcl::Entry;
use super::{ConfigError, Key, Scope, walk};

const TELEMETRY_KEYS: &[(&str, Key)] = &[
    ("Prometheus", Key::Mapped),
    ("DogStatsd", Key::Unimplemented),
    ("Statsd", Key::Unimplemented),
    ("M3", Key::Unimplemented),
    ("InMem", Key::Unimplemented),
    ("MetricPrefix", Key::Unimplemented),
    ("EnableTrustDomainLabel", Key::Unimplemented),
    ("EnableHostnameLabel", Key::Unimplemented),
    ("AllowedPrefixes", Key::Unimplemented),
    ("BlockedPrefixes", Key::Unimplemented),
    ("AllowedLabels", Key::Unimplemented),
    ("BlockedLabels", Key::Unimplemented),
];

const PROMETHEUS_KEYS: &[(&str, Key)] = &[
    ("host", Key::Mapped),
    ("port", Key::Mapped),
    ("tls", Key::Unimplemented),
];

const HEALTH_KEYS: &[(&str, Key)] = &[
    ("listener_enabled", Key::Mapped),
    ("bind_address", Key::Mapped),
    ("bind_port", Key::Mapped),
    ("live_path", Key::Mapped),
    ("ready_path", Key::Mapped),
];

/// Reads `telemetry { Prometheus { host port } }`; every other sink is refused.
///
/// # Errors
///
/// Unknown or unimplemented keys, wrong types, a Prometheus block without a port.
pub(crate) fn telemetry(block: &Entry) -> Result<Telemetry, ConfigError> {
    let mut telemetry = Telemetry::default();
    let scope = Scope {
        block: "telemetry {}",
        kind: "telemetry",
        prefix: "",
        keys: TELEMETRY_KEYS,
    };
    walk(block.object()?, &scope, |entry| {
        telemetry.prometheus = Some(prometheus(entry)?);
        Ok(())
    })?;
    Ok(telemetry)
}

fn prometheus(block: &Entry) -> Result<Prometheus, ConfigError> {
    let mut host = "localhost".to_owned();
    let mut port = None;
    let scope = Scope {
        block: "telemetry { Prometheus {} }",
        kind: "telemetry",
        prefix: "Prometheus.",
        keys: PROMETHEUS_KEYS,
    };
    walk(block.object()?, &scope, |entry| {
        match entry.key.as_str() {
            "host" => host = non_empty(entry)?.to_owned(),
            _ => port = Some(entry.port()?),
        }
        Ok(())
    })?;
    let port = port.ok_or_else(|| {
        ConfigError::Conflict(format!(
            "telemetry {{ Prometheus {{}} }} at line {} has no port: set port, such as 9988",
            block.line
        ))
    })?;
    Ok(Prometheus { host, port })
}

/// Reads `health_checks {}` over SPIRE's defaults.
///
/// # Errors
///
/// Unknown keys, wrong types, paths not starting with `/`.
pub(crate) fn health_checks(block: &Entry) -> Result<HealthChecks, ConfigError> {
    let mut health = HealthChecks::default();
    let scope = Scope {
        block: "health_checks {}",
        kind: "health_checks",
        prefix: "",
        keys: HEALTH_KEYS,
    };
    walk(block.object()?, &scope, |entry| {
        match entry.key.as_str() {
            "listener_enabled" => health.listener_enabled = entry.bool()?,
            "bind_address" => health.bind_address = non_empty(entry)?.to_owned(),
            "bind_port" => health.bind_port = entry.port()?,
            "live_path" => health.live_path = http_path(entry)?,
            _ => health.ready_path = http_path(entry)?,
        }
        Ok(())
    })?;
    Ok(health)
}

fn non_empty(entry: &Entry) -> Result<&str, ConfigError> {
    let s = entry.str()?;
    if s.is_empty() {
        return Err(entry.invalid("it must not be empty"));
    }
    Ok(s)
}

fn http_path(entry: &Entry) -> Result<String, ConfigError> {
    let s = entry.str()?;
    if !s.starts_with('/') {
        return Err(entry.invalid("an HTTP path starts with /"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Entry {
        super::super::hcl::parse(text).unwrap().remove(0)
    }

    #[test]
    fn reads_prometheus_with_spire_default_host() {
        let t = telemetry(&block("telemetry {\n Prometheus {\n  port = 9988\n }\n}\n")).unwrap();
        assert_eq!(
            t.prometheus,
            Some(Prometheus {
                host: "localhost".into(),
                port: 9988
            })
        );
    }

    #[test]
    fn refuses_other_sinks() {
        let err = telemetry(&block(
            "telemetry {\n Statsd = [{ address = \"localhost:8125\" }]\n}\n",
        ))
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "\"Statsd\" (line 2) is a SPIRE telemetry key that Lanyard does not implement yet"
        );
    }

    #[test]
    fn reads_health_checks_over_defaults() {
        let h = health_checks(&block(
            "health_checks {\n listener_enabled = true\n bind_port = \"8080\"\n}\n",
        ))
        .unwrap();
        assert!(h.listener_enabled);
        assert_eq!(h.bind_port, 8080);
        assert_eq!(h.live_path, "/live");
    }
}
