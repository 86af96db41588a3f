//! `agent_path_template`: the part of SPIRE's Go text/template language that x509pop agent IDs
//! use. Only field references are understood; anything else (functions, pipelines, trim
//! markers, unknown fields) is refused when the configuration is loaded, not at attestation.

use std::fmt;

/// The values a template may name, as SPIRE spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    PluginName,
    TrustDomain,
    Fingerprint,
    SubjectCommonName,
    SerialNumberHex,
}

const FIELDS: &[(&str, Field)] = &[
    (".PluginName", Field::PluginName),
    (".TrustDomain", Field::TrustDomain),
    (".Fingerprint", Field::Fingerprint),
    (".Subject.CommonName", Field::SubjectCommonName),
    (".SerialNumberHex", Field::SerialNumberHex),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A parsed `agent_path_template`; rendering it gives the path after `/spire/agent`.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentPathTemplate {
    source: String,
    parts: Vec<Part>,
}

/// Why a template was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("agent_path_template {template:?}: {rule}")]
pub struct TemplateError {
    template: String,
    rule: String,
}

/// What the template is filled with for one attested certificate.
pub(crate) struct TemplateValues<'a> {
    pub(crate) plugin_name: &'a str,
    pub(crate) trust_domain: &'a str,
    pub(crate) fingerprint: &'a str,
    pub(crate) subject_common_name: &'a str,
    pub(crate) serial_number_hex: &'a str,
}

impl AgentPathTemplate {
    /// SPIRE's default for x509pop with an external PKI: `/x509pop/<fingerprint>`.
    pub fn x509pop_default() -> Self {
        Self {
            source: "/{{ .PluginName }}/{{ .Fingerprint }}".into(),
            parts: vec![
                Part::Text("/".into()),
                Part::Field(Field::PluginName),
                Part::Text("/".into()),
                Part::Field(Field::Fingerprint),
            ],
        }
    }

    /// Parses a template such as `/cn/{{ .Subject.CommonName }}`.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] naming the template and the rule: it must start with `/`, every
    /// `{{` must close, and each action must be one of the fields `.PluginName`,
    /// `.TrustDomain`, `.Fingerprint`, `.Subject.CommonName` or `.SerialNumberHex`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let refuse = |rule: String| TemplateError {
            template: source.to_owned(),
            rule,
        };
        if !source.starts_with('/') {
            return Err(refuse(
                "it must start with '/': the result is appended to /spire/agent".into(),
            ));
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| refuse("a '{{' has no closing '}}'".into()))?;
            let action = after[..close].trim();
            let field = FIELDS
                .iter()
                .find(|(name, _)| *name == action)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    refuse(format!(
                        "{{{{ {action} }}}} is not supported: Lanyard fills in only {}",
                        FIELDS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            parts.push(Part::Field(field));
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err(refuse("a '}}' has no opening '{{'".into()));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Fills the template in.
    pub(crate) fn render(&self, values: &TemplateValues<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            out.push_str(match part {
                Part::Text(text) => text,
                Part::Field(Field::PluginName) => values.plugin_name,
                Part::Field(Field::TrustDomain) => values.trust_domain,
                Part::Field(Field::Fingerprint) => values.fingerprint,
                Part::Field(Field::SubjectCommonName) => values.subject_common_name,
                Part::Field(Field::SerialNumberHex) => values.serial_number_hex,
            });
        }
        out
    }
}

impl fmt::Debug for AgentPathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentPathTemplate({:?})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues<'static> {
        TemplateValues {
            plugin_name: "x509pop",
            trust_domain: "example.org",
            fingerprint: "0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33",
            subject_common_name: "node-1",
            serial_number_hex: "0a1b",
        }
    }

    #[test]
    fn default_renders_plugin_and_fingerprint() {
        assert_eq!(
            AgentPathTemplate::x509pop_default().render(&values()),
            "/x509pop/0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33"
        );
        assert_eq!(
            AgentPathTemplate::parse("/{{ .PluginName }}/{{ .Fingerprint }}").unwrap(),
            AgentPathTemplate::x509pop_default()
        );
    }

    #[test]
    fn renders_every_supported_field_with_or_without_spaces() {
        let t = AgentPathTemplate::parse(
            "/{{.TrustDomain}}/cn/{{ .Subject.CommonName }}/sn-{{  .SerialNumberHex }}",
        )
        .unwrap();
        assert_eq!(t.render(&values()), "/example.org/cn/node-1/sn-0a1b");
    }

    #[test]
    fn refuses_unknown_fields_and_functions() {
        for (template, part) in [
            (
                "/{{ .Subject.Organization }}",
                "{{ .Subject.Organization }} is not supported",
            ),
            (
                "/{{ .Fingerprint | upper }}",
                "{{ .Fingerprint | upper }} is not supported",
            ),
            (
                "/{{- .Fingerprint }}",
                "{{ - .Fingerprint }} is not supported",
            ),
            (
                "/{{ .URISanSelectors.host }}",
                "Lanyard fills in only .PluginName",
            ),
        ] {
            let err = AgentPathTemplate::parse(template).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("agent_path_template {template:?}: ")),
                "{err}"
            );
            assert!(err.contains(part), "{part:?} missing from {err}");
        }
    }

    #[test]
    fn refuses_unbalanced_braces_and_relative_paths() {
        let err = AgentPathTemplate::parse("/{{ .Fingerprint").unwrap_err();
        assert!(err.to_string().contains("has no closing '}}'"), "{err}");
        let err = AgentPathTemplate::parse("/a }} b").unwrap_err();
        assert!(err.to_string().contains("has no opening '{{'"), "{err}");
        let err = AgentPathTemplate::parse("{{ .PluginName }}/{{ .Fingerprint }}").unwrap_err();
        assert!(err.to_string().contains("must start with '/'"), "{err}");
    }
}
