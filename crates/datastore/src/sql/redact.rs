//! Hiding passwords in driver error messages (the connection string itself is redacted by
//! [`crate::connstr::redact`]).

/// `message` with every occurrence of the password in `url` (if any) replaced by `****`, for
/// error texts from lower layers that might quote the URL they were given.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_owned();
    for secret in secrets(url) {
        if !secret.is_empty() {
            out = out.replace(&secret, "****");
        }
    }
    out
}

fn is_secret_key(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "password" | "pass" | "pwd" | "sslpassword"
    )
}

fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return found;
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password.to_owned());
    }
    for pair in query.unwrap_or_default().split('&') {
        if let Some((key, value)) = pair.split_once('=')
            && is_secret_key(key)
        {
            found.push(value.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_the_password_out_of_messages() {
        let url = "postgres://u:hunter2@h/db?password=p4ss";
        assert_eq!(
            scrub("cannot use hunter2 or p4ss at h", url),
            "cannot use **** or **** at h"
        );
    }
}
