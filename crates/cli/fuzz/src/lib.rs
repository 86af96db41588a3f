//! The HCL 1 config parser of the `lanyard` binary, compiled in place for the fuzz targets.
//!
//! `lanyard` is a binary crate, so nothing can depend on it; instead the parser's files
//! (`crates/cli/src/config/hcl*.rs`, their error type and `duration.rs`) are included with
//! `#[path]` under the same module names, so that their `super::` and `crate::` paths resolve
//! as in the binary. They need nothing else from it but `config::clip` (see `config.rs`).
//!
//! The checks live here rather than in the targets because the parser's types are
//! `pub(crate)`: only this crate can name them.
#![forbid(unsafe_code)]

// Most of the error variants, readers and duration helpers are for the config walkers, which
// are not included.
#[allow(dead_code)]
mod config;
#[allow(dead_code)]
#[path = "../../src/duration.rs"]
mod duration;
mod write;

use config::error::ConfigError;
use config::hcl::{self, Entry, Value};
use config::hcl_shape;

/// A parser entry point.
type Reader = fn(&str) -> Result<Vec<Entry>, ConfigError>;

/// The two entry points: SPIRE's files (`0644` octal) and spiffe-helper's (`0644` decimal).
const READERS: [(&str, Reader); 2] = [("parse_spire", hcl::parse_spire), ("parse", hcl::parse)];

/// Parses `text` with both readers; an accepted tree goes through every typed reader the
/// config walkers use and through `hcl_shape::normalize`, a refusal is formatted.
///
/// # Panics
///
/// When the parser or a reader panics, or when a refusal is not the syntax or interpolation
/// error the parser documents, or points at a line past the end of the text.
pub fn check_parse(text: &str) {
    let lines = 1 + text.matches('\n').count();
    for (name, read) in READERS {
        match read(text) {
            Ok(entries) => {
                read_all(&entries);
                let _ = hcl_shape::normalize(entries);
            }
            Err(e) => {
                let message = e.to_string();
                match e {
                    ConfigError::Syntax { line, column, .. } => {
                        assert!(
                            (1..=lines).contains(&line) && column >= 1,
                            "{name}: {message:?} is outside the {lines} lines of the text"
                        );
                    }
                    ConfigError::InvalidValue { line, .. } => {
                        assert!((1..=lines).contains(&line), "{name}: {message:?}");
                    }
                    other => panic!("{name} refused with an undocumented error: {other:?}"),
                }
            }
        }
    }
}

/// Writes every tree `text` parses to back as HCL (`write`) and reads it again with the same
/// reader.
///
/// # Panics
///
/// When the written text is refused or reads as a different tree (lines aside).
pub fn check_round_trip(text: &str) {
    for (name, read) in READERS {
        let Ok(mut entries) = read(text) else {
            continue;
        };
        let written = write::entries(&entries);
        let mut again = match read(&written) {
            Ok(again) => again,
            Err(e) => panic!("{name} refuses its own tree written as\n{written}\n{e}"),
        };
        without_lines(&mut entries);
        without_lines(&mut again);
        assert_eq!(
            again, entries,
            "{name} reads back a different tree from\n{written}"
        );
    }
}

/// Calls every typed reader on every entry, nested ones included, and formats its errors.
fn read_all(entries: &[Entry]) {
    for e in entries {
        let _ = e.shown();
        let _ = e.invalid("a rule").to_string();
        let _ = e.str().map_err(|e| e.to_string());
        let _ = e.path().map_err(|e| e.to_string());
        let _ = e.bool().map_err(|e| e.to_string());
        let _ = e.port().map_err(|e| e.to_string());
        let _ = e.server_port().map_err(|e| e.to_string());
        let _ = e.duration().map_err(|e| e.to_string());
        if let Ok(inner) = e.object() {
            read_all(inner);
        }
        if let Value::List(items) = &e.value {
            // List elements have no key of their own; the walkers read them under the list's.
            let items: Vec<Entry> = items
                .iter()
                .map(|value| Entry {
                    key: e.key.clone(),
                    labels: Vec::new(),
                    line: e.line,
                    value: value.clone(),
                })
                .collect();
            read_all(&items);
        }
    }
}

fn without_lines(entries: &mut [Entry]) {
    for e in entries {
        e.line = 0;
        value_without_lines(&mut e.value);
    }
}

fn value_without_lines(value: &mut Value) {
    match value {
        Value::Object(inner) => without_lines(inner),
        Value::List(items) => items.iter_mut().for_each(value_without_lines),
        _ => {}
    }
}
