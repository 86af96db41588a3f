//! Parsing of ID flags and printing of entries, shared by the admin commands.

/// `println!` for command output that never panics: a closed pipe (`| head`) ends the
/// process quietly, any other write failure (a full disk) ends it with a message.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::output::stdout_failed(e);
        }
    }};
}

/// `print!` counterpart of [`out!`].
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = write!(stdout, $($arg)*).and_then(|()| stdout.flush()) {
            $crate::output::stdout_failed(e);
        }
    }};
}

pub(crate) use {out, out_raw};

/// Ends the process after standard output failed.
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId};
use serde_json::Value;

/// Parses a SPIFFE ID flag; the error keeps the parser's rule.
pub(crate) fn parse_spiffe_id(s: &str) -> Result<SpiffeId, String> {
    SpiffeId::parse(s).map_err(|e| format!("{s:?} is not a valid SPIFFE ID: {e}"))
}

/// Parses a `type:value` selector flag.
pub(crate) fn parse_selector(s: &str) -> Result<Selector, String> {
    Selector::parse(s).map_err(|e| format!("{s:?} is not a valid selector: {e}"))
}

/// The SPIRE wire form of an ID.
pub(crate) fn wire_id(id: &SpiffeId) -> types::Spiffeid {
    types::Spiffeid {
        trust_domain: id.trust_domain_name().to_string(),
        path: id.path().to_string(),
    }
}

/// `spiffe://td/path` from the wire form, without validation (for display only).
pub(crate) fn id_string(id: Option<&types::Spiffeid>) -> String {
    id.map(|id| format!("spiffe://{}{}", id.trust_domain, id.path))
        .unwrap_or_default()
}

/// An entry as SPIRE's CLI prints it.
pub(crate) fn print_entry(e: &types::Entry) {
    out_raw!("{}", entry_text(e));
}

/// The text block SPIRE's CLI prints for an entry, blank line included: on stdout for entries
/// shown or written, on stderr for entries a batch failed to write.
pub(crate) fn entry_text(e: &types::Entry) -> String {
    use std::fmt::Write as _;

    // Field order, labels and the time format follow SPIRE's `entry show`, so scripts reading
    // its text keep working. Writing to a String cannot fail.
    let mut t = String::new();
    let id = if e.id.is_empty() { "(none)" } else { &e.id };
    let _ = writeln!(t, "Entry ID         : {id}");
    let _ = writeln!(t, "SPIFFE ID        : {}", id_string(e.spiffe_id.as_ref()));
    let _ = writeln!(t, "Parent ID        : {}", id_string(e.parent_id.as_ref()));
    let _ = writeln!(t, "Revision         : {}", e.revision_number);
    if e.downstream {
        let _ = writeln!(t, "Downstream       : true");
    }
    let _ = writeln!(t, "X509-SVID TTL    : {}", ttl(e.x509_svid_ttl));
    let _ = writeln!(t, "JWT-SVID TTL     : {}", ttl(e.jwt_svid_ttl));
    if e.expires_at != 0 {
        let _ = writeln!(
            t,
            "Expiration time  : {} +0000 UTC",
            crate::cmd::server_agent::expiry::utc_date_time(e.expires_at)
        );
    }
    for s in &e.selectors {
        let _ = writeln!(t, "Selector         : {}:{}", s.r#type, s.value);
    }
    for td in &e.federates_with {
        let _ = writeln!(t, "FederatesWith    : {td}");
    }
    for dns in &e.dns_names {
        let _ = writeln!(t, "DNS name         : {dns}");
    }
    if e.admin {
        let _ = writeln!(t, "Admin            : true");
    }
    if e.store_svid {
        let _ = writeln!(t, "StoreSvid        : true");
    }
    if !e.hint.is_empty() {
        let _ = writeln!(t, "Hint             : {}", e.hint);
    }
    t.push('\n');
    t
}

fn ttl(seconds: i32) -> String {
    if seconds == 0 {
        "default".into()
    } else {
        seconds.to_string()
    }
}

/// Prints JSON on one line with a trailing newline, keys sorted, as SPIRE's CLI prints its
/// `-output json` (Go's encoder over a map), so its output and ours compare byte for byte.
/// Null members are left out, as SPIRE's printer drops them (an unset message field).
pub(crate) fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut v = v.clone();
    drop_nulls(&mut v);
    out!("{}", serde_json::to_string(&v)?);
    Ok(())
}

/// Removes null object members and null array elements, at every depth.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(drop_nulls);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_dropped_at_every_depth() {
        let mut v = serde_json::json!({
            "a": null,
            "b": [null, {"c": null, "d": 1}],
            "e": {"f": null, "g": "x"},
        });
        drop_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"b": [{"d": 1}], "e": {"g": "x"}}));
    }
}
