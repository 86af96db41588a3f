//! The meaning SPIRE gives an HCL 1 tree, applied to the parsed [`Entry`]s so that the walkers
//! see one shape for the spellings SPIRE treats alike.
//!
//! HCL 1 decodes `a "b" "c" { .. }` exactly as `a { b { c { .. } } }` and `a = { .. }` exactly
//! as `a { .. }`; SPIRE merges a top-level block written twice (`plugins {} plugins {}`). Here:
//!
//! - every label becomes a level of nesting, except for plugins, which keep the one form the
//!   plugin walker reads, `Type "name" { .. }`: `DataStore { sql { .. } }` and
//!   `NodeAttestor = { join_token = { .. } }` become it too;
//! - top-level blocks of one name are merged into the first, in order, so that a key given in
//!   both is still refused as a duplicate (SPIRE would keep the last silently).

use super::hcl::{Entry, Value};

/// Applies SPIRE's meaning to a file's top-level entries.
pub(crate) fn normalize(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for entry in entries {
        let plugins = entry.key == "plugins" && entry.labels.is_empty();
        let mut entry = nest_labels(entry);
        if plugins && let Value::Object(types) = entry.value {
            entry.value = Value::Object(types.into_iter().flat_map(plugin_entries).collect());
        }
        let earlier = out.iter_mut().find(|e| e.key == entry.key);
        match (earlier, entry.value) {
            (
                Some(Entry {
                    value: Value::Object(first),
                    ..
                }),
                Value::Object(more),
            ) => first.extend(more),
            (_, value) => out.push(Entry { value, ..entry }),
        }
    }
    out
}

/// `a "b" { .. }` as `a { b { .. } }`, at every depth.
fn nest_labels(entry: Entry) -> Entry {
    let value = nest_value(entry.value);
    let value = entry.labels.iter().rev().fold(value, |inner, label| {
        Value::Object(vec![Entry {
            key: label.clone(),
            labels: Vec::new(),
            line: entry.line,
            value: inner,
        }])
    });
    Entry {
        key: entry.key,
        labels: Vec::new(),
        line: entry.line,
        value,
    }
}

fn nest_value(value: Value) -> Value {
    match value {
        Value::Object(entries) => Value::Object(entries.into_iter().map(nest_labels).collect()),
        Value::List(items) => Value::List(items.into_iter().map(nest_value).collect()),
        other => other,
    }
}

/// One plugin type's entry (already nested) as one `Type "name" { .. }` entry per plugin.
/// An entry that is not `Type { name { .. } .. }` is passed on for the walker to refuse.
fn plugin_entries(entry: Entry) -> Vec<Entry> {
    match entry.value {
        Value::Object(named) if !named.is_empty() => named
            .into_iter()
            .map(|plugin| Entry {
                key: entry.key.clone(),
                labels: vec![plugin.key],
                line: plugin.line,
                value: plugin.value,
            })
            .collect(),
        value => vec![Entry { value, ..entry }],
    }
}

#[cfg(test)]
mod tests {
    use super::super::hcl1;
    use super::*;

    fn shaped(text: &str) -> Vec<Entry> {
        normalize(hcl1::parse(text, hcl1::Zeros::Octal).unwrap())
    }

    #[test]
    fn plugin_spellings_read_alike() {
        let labelled = shaped("plugins {\n DataStore \"sql\" {\n plugin_data { a = 1 } } }\n");
        for other in [
            "plugins {\n DataStore sql {\n plugin_data { a = 1 } } }\n",
            "plugins {\n \"DataStore\" \"sql\" {\n plugin_data = { a = 1 } } }\n",
            "plugins {\n DataStore { sql {\n plugin_data { a = 1 } } } }\n",
            "plugins {\n DataStore = { sql = {\n plugin_data = { a = 1 } } } }\n",
        ] {
            assert_eq!(shaped(other), labelled, "{other}");
        }
        let plugin = &labelled[0].object().unwrap()[0];
        assert_eq!(
            (plugin.key.as_str(), plugin.labels.as_slice()),
            ("DataStore", &["sql".to_owned()][..])
        );
    }

    #[test]
    fn one_type_block_may_hold_several_plugins() {
        let e = shaped("plugins {\n NodeAttestor {\n join_token {}\n x509pop {} } }\n");
        let plugins = e[0].object().unwrap();
        assert_eq!(plugins.len(), 2);
        assert_eq!(plugins[1].labels, ["x509pop"]);
        assert_eq!(plugins[1].line, 4);
    }

    #[test]
    fn labels_elsewhere_are_nesting() {
        assert_eq!(
            shaped("server \"a\" { b = 1 }\n"),
            shaped("server { a { b = 1 } }\n")
        );
    }

    #[test]
    fn merges_repeated_top_level_blocks_keeping_both_keys() {
        let e = shaped("server { a = 1 }\nplugins {}\nserver { a = 2 }\n");
        assert_eq!(e.len(), 2);
        let server = e[0].object().unwrap();
        assert_eq!(server.len(), 2);
        assert_eq!((server[0].line, server[1].line), (1, 3));
    }

    #[test]
    fn keeps_a_repeated_non_block_for_the_walker() {
        assert_eq!(shaped("a = 1\na = 2\n").len(), 2);
    }
}
