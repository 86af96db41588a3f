//! `--expand-env`: `$NAME` and `${NAME}` in the config text, replaced before parsing (SPIRE's
//! `-expandEnv`).
//!
//! One deliberate difference: SPIRE expands an unset variable to the empty string, so a typo in
//! `${DB_PASSWORD}` or a variable missing from a unit file starts the daemon with an empty
//! setting. Lanyard refuses an unset variable and names it with its line; a variable that is set
//! to the empty string still expands to nothing. `$$` writes a literal `$`; a `$` not followed by
//! a name or `{` is kept as written.

use super::error::ConfigError;

/// Expands variables in `text`, reading them with `lookup`.
///
/// # Errors
///
/// [`ConfigError::UnsetVariable`] for a variable `lookup` does not know,
/// [`ConfigError::BadVariable`] for `${` without a name and a closing brace.
pub(crate) fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut line = 1;
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let (before, from_dollar) = rest.split_at(at);
        line += before.matches('\n').count();
        out.push_str(before);
        let after = &from_dollar[1..];

        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').ok_or(ConfigError::BadVariable { line })?;
            let name = &braced[..end];
            if !is_name(name) {
                return Err(ConfigError::BadVariable { line });
            }
            (name, end + 2)
        } else if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
            continue;
        } else {
            let len = after
                .char_indices()
                .find(|&(i, c)| {
                    !(c == '_' || c.is_ascii_alphanumeric()) || (i == 0 && c.is_ascii_digit())
                })
                .map_or(after.len(), |(i, _)| i);
            if len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            (&after[..len], len)
        };

        let value = lookup(name).ok_or_else(|| ConfigError::UnsetVariable {
            name: name.to_owned(),
            line,
        })?;
        out.push_str(&value);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TD" => Some("example.org".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms() {
        let text = "a = \"$TD\"\nb = \"${TD}/x\"\nc = \"[$EMPTY]\"\n";
        assert_eq!(
            expand(text, env).unwrap(),
            "a = \"example.org\"\nb = \"example.org/x\"\nc = \"[]\"\n"
        );
    }

    #[test]
    fn keeps_lone_dollars_and_unescapes_double_ones() {
        assert_eq!(
            expand("a = \"5$ $$TD $1\"", env).unwrap(),
            "a = \"5$ $TD $1\""
        );
    }

    #[test]
    fn refuses_unset_variables_naming_them_and_their_line() {
        let err = expand("a = 1\nb = \"${NOPE}\"\n", env)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("environment variable NOPE (line 2) is not set"),
            "{err}"
        );
    }

    #[test]
    fn refuses_unclosed_braces() {
        let err = expand("\n\na = \"${TD\"", env).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
