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
use serde_json::{Value, json};

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
    // Field order, labels and the time format follow SPIRE's `entry show`, so scripts reading
    // its text keep working.
    out!("Entry ID         : {}", e.id);
    out!("SPIFFE ID        : {}", id_string(e.spiffe_id.as_ref()));
    out!("Parent ID        : {}", id_string(e.parent_id.as_ref()));
    out!("Revision         : {}", e.revision_number);
    if e.downstream {
        out!("Downstream       : true");
    }
    out!("X509-SVID TTL    : {}", ttl(e.x509_svid_ttl));
    out!("JWT-SVID TTL     : {}", ttl(e.jwt_svid_ttl));
    if e.expires_at != 0 {
        out!(
            "Expiration time  : {} +0000 UTC",
            crate::cmd::server_agent::expiry::utc_date_time(e.expires_at)
        );
    }
    for s in &e.selectors {
        out!("Selector         : {}:{}", s.r#type, s.value);
    }
    for td in &e.federates_with {
        out!("FederatesWith    : {td}");
    }
    for dns in &e.dns_names {
        out!("DNS name         : {dns}");
    }
    if e.admin {
        out!("Admin            : true");
    }
    if e.store_svid {
        out!("StoreSvid        : true");
    }
    if !e.hint.is_empty() {
        out!("Hint             : {}", e.hint);
    }
    out!();
}

fn ttl(seconds: i32) -> String {
    if seconds == 0 {
        "default".into()
    } else {
        seconds.to_string()
    }
}

/// An entry in the JSON shape of SPIRE's API (protobuf JSON field names).
pub(crate) fn entry_json(e: &types::Entry) -> Value {
    let id = |id: Option<&types::Spiffeid>| {
        id.map(|id| json!({"trust_domain": id.trust_domain, "path": id.path}))
            .unwrap_or(Value::Null)
    };
    json!({
        "id": e.id,
        "spiffe_id": id(e.spiffe_id.as_ref()),
        "parent_id": id(e.parent_id.as_ref()),
        "selectors": e.selectors.iter()
            .map(|s| json!({"type": s.r#type, "value": s.value}))
            .collect::<Vec<_>>(),
        "x509_svid_ttl": e.x509_svid_ttl,
        "jwt_svid_ttl": e.jwt_svid_ttl,
        "federates_with": e.federates_with,
        "admin": e.admin,
        "downstream": e.downstream,
        "expires_at": e.expires_at,
        "dns_names": e.dns_names,
        "revision_number": e.revision_number,
        "store_svid": e.store_svid,
        "hint": e.hint,
        "created_at": e.created_at,
    })
}

/// Prints JSON with a trailing newline.
pub(crate) fn print_json(v: &Value) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
