//! Parsed entries written back as HCL 1, for the round-trip target.
//!
//! One plain style: keys and strings always quoted, labels kept on blocks, objects as
//! `key = { .. }`, one item per line. The property tests in `hcl1_tests.rs` already vary the
//! style over generated trees; here the trees are whatever the fuzzer gets the parser to accept,
//! so the writer must be able to spell every string and number the parser can return.

use std::fmt::Write as _;

use crate::config::hcl::{Entry, Value};

/// `entries` as the text of a file.
pub(crate) fn entries(entries: &[Entry]) -> String {
    let mut out = String::new();
    body(entries, &mut out);
    out
}

fn body(entries: &[Entry], out: &mut String) {
    for e in entries {
        quoted(&e.key, out);
        if e.labels.is_empty() {
            out.push_str(" = ");
        } else {
            // Only blocks have labels: `key "label" { .. }`.
            for label in &e.labels {
                out.push(' ');
                quoted(label, out);
            }
            out.push(' ');
        }
        value(&e.value, out);
        out.push('\n');
    }
}

fn value(value: &Value, out: &mut String) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        // A decimal too large for f64 reads as infinity; any exponent that large does too.
        Value::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "1e999" } else { "-1e999" });
        }
        // `{:?}` is the shortest text that reads back as the same f64, always with a `.` or an
        // exponent, so that it stays a float.
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Value::String(s) => quoted(s, out),
        Value::List(items) => {
            out.push_str("[\n");
            for item in items {
                self::value(item, out);
                out.push_str(",\n");
            }
            out.push(']');
        }
        Value::Object(inner) => {
            out.push_str("{\n");
            body(inner, out);
            out.push('}');
        }
    }
}

/// `s` in double quotes with the escapes HCL 1 reads.
fn quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            // `${` would start interpolation, inside which a `"` does not end the string.
            '$' => out.push_str("\\x24"),
            c if c.is_control() => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
