//! The HCL 1 grammar, one rule per test; each form was checked against SPIRE v1.13.3 (see
//! `tests/spire_interop/hcl_parity.rs`, which keeps checking it).

use super::*;

fn read(text: &str) -> Vec<Entry> {
    parse(text, Zeros::Octal).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn refused(text: &str) -> String {
    match parse(text, Zeros::Octal) {
        Ok(entries) => panic!("{text:?} was read as {entries:?}"),
        Err(e) => e.to_string(),
    }
}

fn value(text: &str) -> Value {
    read(text).remove(0).value
}

fn object(entries: &[(&str, Value)]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|(k, v)| Entry {
                key: (*k).to_owned(),
                labels: Vec::new(),
                line: 1,
                value: v.clone(),
            })
            .collect(),
    )
}

#[test]
fn nests_blocks_on_one_line() {
    let e = read("a \"x\" { b { c = 1 d = \"s\" } }");
    assert_eq!(e[0].labels, ["x"]);
    assert_eq!(
        e[0].value,
        object(&[(
            "b",
            object(&[("c", Value::Int(1)), ("d", Value::String("s".into()))])
        )])
    );
}

#[test]
fn separates_items_with_commas_or_nothing() {
    let expected = object(&[("b", Value::Int(1)), ("c", Value::Int(2))]);
    assert_eq!(value("a { b = 1, c = 2, }"), expected);
    assert_eq!(value("a { b = 1 c = 2 }"), expected);
    assert_eq!(value("a = { b = 1, c = 2 }"), expected);
    assert_eq!(read("a {}, b {},").len(), 2);
    assert!(refused("a { b = 1,, c = 2 }").contains("expected a key"));
}

#[test]
fn takes_quoted_and_bare_keys_and_labels() {
    let e = read("\"DataStore\" sql \"two words\" {}\nk.e-y = 1\nniveau_dé = 2\n");
    assert_eq!(e[0].key, "DataStore");
    assert_eq!(e[0].labels, ["sql", "two words"]);
    assert_eq!(e[1].key, "k.e-y");
    assert_eq!(e[2].key, "niveau_dé");
}

#[test]
fn refuses_labels_on_an_assignment() {
    assert_eq!(
        refused("a b = 1"),
        "HCL syntax error at line 1, column 5: `a` has labels, so it is a block: write `{` \
         after them, not `=`"
    );
}

#[test]
fn reads_lists_with_loose_commas_but_not_without_them() {
    let ab = Value::List(vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(value("a = [1, 2,]"), ab);
    assert_eq!(value("a = [\n 1, # one\n // two\n /* three */ 2\n]"), ab);
    assert_eq!(value("a = [,1,,2]"), ab);
    assert_eq!(value("a = []"), Value::List(Vec::new()));
    assert_eq!(
        value("a = [[true], {b = 1}]"),
        Value::List(vec![
            Value::List(vec![Value::Bool(true)]),
            object(&[("b", Value::Int(1))])
        ])
    );
    assert_eq!(
        refused("a = [1 2]"),
        "HCL syntax error at line 1, column 8: the number 2 in the list of a: list elements \
         are separated by commas"
    );
}

#[test]
fn reads_numbers_as_hcl1_does() {
    assert_eq!(value("a = 0x1F91"), Value::Int(8081));
    assert_eq!(value("a = -0x10"), Value::Int(-16));
    assert_eq!(value("a = 017621"), Value::Int(8081));
    assert_eq!(value("a = -12"), Value::Int(-12));
    assert_eq!(value("a = 0"), Value::Int(0));
    assert_eq!(value("a = 8081.0"), Value::Float(8081.0));
    assert_eq!(value("a = 8e3"), Value::Float(8000.0));
    assert_eq!(value("a = 1.5E-1"), Value::Float(0.15));
    assert_eq!(value("a = .5"), Value::Float(0.5));
    assert!(refused("a = 0648").contains("illegal octal number 0648"));
    assert!(refused("a = 0x").contains("illegal hexadecimal number"));
    let digits = parse("a = 0644", Zeros::Decimal).unwrap();
    assert_eq!(digits[0].value, Value::Int(644));
}

#[test]
fn unescapes_strings() {
    assert_eq!(
        value(r#"a = "t\tq\"b\\x\x41o\101u\u00e9U\U0001F600""#),
        Value::String("t\tq\"b\\xAoAuéU😀".into())
    );
    assert!(refused(r#"a = "\q""#).contains("illegal escape \\q"));
    assert!(refused(r#"a = "\/""#).contains("illegal escape \\/"));
    assert!(refused(r#"a = "\u00""#).contains("4 digits in base 16"));
    assert!(refused("a = \"open\nb = 1").contains("not terminated before the end of the line"));
}

#[test]
fn refuses_interpolation_even_with_quotes_inside() {
    let err = refused("a = \"${x\"y}\"");
    assert!(err.starts_with("a = \"${x\\\"y}\" at line 1"), "{err}");
    assert!(err.contains("--expand-env"), "{err}");
}

#[test]
fn reads_heredocs_as_hcl1_does() {
    let s = |text: &str| match value(text) {
        Value::String(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(s("a = <<EOF\nx\n  y\nEOF\n"), "x\n  y\n");
    assert_eq!(s("a = <<EOF\n  x\n  EOF\n"), "  x\n  ");
    assert_eq!(s("a = <<-EOF\n      x\n    y\n    EOF\n"), "  x\ny\n");
    assert_eq!(s("a = <<-EOF\n    x\n  y\n    EOF\n"), "    x\n  y\n");
    assert_eq!(s("a = <<EOF\r\nx\r\nEOF\r\n"), "x\r\n");
    assert!(refused("a = <<EOF\nx\n").contains("heredoc not terminated"));
    assert!(refused("a = <<EOF\nx\nEOF").contains("heredoc not terminated"));
    assert!(refused("a = <<\nx\n\n").contains("needs a name"));
    assert!(refused("<<EOF\nx\nEOF\n").contains("expected a key"));
}

#[test]
fn skips_every_kind_of_comment() {
    let e = read("# a\n// b\n/* c\n d */ k = 1 # e\nl /* f */ = 2 // g");
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].line, e[1].line), (4, 5));
    assert!(refused("/* open").contains("comment not terminated"));
    assert!(refused("k = 1 / 2").contains("a lone `/`"));
}

#[test]
fn takes_tabs_and_crlf_and_refuses_a_byte_order_mark() {
    let e = read("a {\r\n\tb = 1\r\n}\r\n");
    let body = e[0].object().unwrap();
    assert_eq!((body[0].key.as_str(), body[0].line), ("b", 2));
    assert_eq!(body[0].value, Value::Int(1));
    assert!(refused("\u{feff}a = 1").contains("byte order mark"));
}

#[test]
fn refuses_what_hcl1_refuses_naming_line_and_column() {
    for (text, message) in [
        ("a: 1", "line 1, column 2: illegal character ':'"),
        ("a = 1;", "line 1, column 6: illegal character ';'"),
        ("a = 'x'", "line 1, column 5: illegal character '\\''"),
        (
            "a = null",
            "line 1, column 5: a = `null`: a value is a string",
        ),
        (
            "a = 1 garbage",
            "line 1, column 14: key `garbage` must be followed by `=` or `{`",
        ),
        ("}", "line 1, column 1: a `}` without a `{` to close"),
        (
            "a {\n b = 1\n",
            "line 3, column 1: the `{` at line 1 is never closed by a `}`",
        ),
        (
            "a = [1,\n",
            "line 2, column 1: the `[` at line 1 is never closed by a `]`",
        ),
        (
            "a =\n",
            "line 1, column 4: a = the end of the file: a value is",
        ),
        ("= 1", "line 1, column 1: `=` without a key before it"),
        ("a = +1", "line 1, column 5: a = `+`: a value is"),
    ] {
        let err = refused(text);
        assert!(
            err.starts_with(&format!("HCL syntax error at {message}")),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn refuses_nesting_deep_enough_to_exhaust_the_stack() {
    let deep = format!("a = {}", "[".repeat(100_000));
    assert!(refused(&deep).contains("nesting deeper than 64 levels"));
    let deep = "a {".repeat(100_000);
    assert!(refused(&deep).contains("nesting deeper than 64 levels"));
    let labels = format!("a {} {{}}", "b ".repeat(100_000));
    assert!(refused(&labels).contains("nesting deeper than 64 levels"));
}

/// A small deterministic generator, so that the property tests below need no extra crate and
/// fail the same way every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn never_panics_on_token_soup() {
    const PIECES: [&str; 30] = [
        "{", "}", "[", "]", "=", ",", "\"", "<<EOF\n", "<<-EOF\n", "EOF\n", "-", "0x", "0", "9",
        ".", "e", "\\", "${", "#", "/*", "*/", "\n", "\r", " ", "a", "é", "\u{feff}", "\\u",
        "true", "/",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let text: String = (0..rng.below(40))
            .map(|_| PIECES[rng.below(PIECES.len())])
            .collect();
        for zeros in [Zeros::Octal, Zeros::Decimal] {
            if let Ok(entries) = parse(&text, zeros) {
                let _ = super::super::hcl_shape::normalize(entries);
            }
        }
    }
}

/// Writes `entries` back as HCL in a style picked by `rng`: blocks or `= {}`, one line or
/// several, commas or not.
fn write(entries: &[Entry], rng: &mut Rng, out: &mut String) {
    for e in entries {
        out.push_str(&format!("{:?}", e.key));
        match &e.value {
            Value::Object(_) if rng.below(2) == 0 => out.push(' '),
            _ => out.push_str(" = "),
        }
        write_value(&e.value, rng, out);
        out.push_str([" ", "\n", ", ", ",\n"][rng.below(4)]);
    }
}

fn write_value(value: &Value, rng: &mut Rng, out: &mut String) {
    match value {
        Value::Bool(b) => out.push_str(&b.to_string()),
        Value::Int(i) if *i >= 0 && rng.below(2) == 0 => out.push_str(&format!("0x{i:x}")),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format!("{f:?}")),
        Value::String(s) => out.push_str(&format!("{s:?}")),
        Value::List(items) => {
            out.push('[');
            for item in items {
                write_value(item, rng, out);
                out.push_str([",", ", ", ",\n"][rng.below(3)]);
            }
            out.push(']');
        }
        Value::Object(inner) => {
            out.push_str(["{", "{\n"][rng.below(2)]);
            write(inner, rng, out);
            out.push('}');
        }
    }
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 4 } else { 6 }) {
        0 => Value::Bool(rng.below(2) == 0),
        1 => Value::Int(rng.below(100_000) as i64 - 50_000),
        2 => Value::Float(rng.below(1000) as f64 / 8.0),
        3 => Value::String(["", "a b", "q\"\\", "é\t\n", "$HOME", "{}"][rng.below(6)].into()),
        4 => Value::List(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(random_entries(rng, depth + 1)),
    }
}

fn random_entries(rng: &mut Rng, depth: usize) -> Vec<Entry> {
    (0..rng.below(4))
        .map(|i| Entry {
            key: ["a", "b-c", "d.e", "ünï", "two words"][rng.below(5)].to_owned() + &i.to_string(),
            labels: Vec::new(),
            line: 0,
            value: random_value(rng, depth),
        })
        .collect()
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

#[test]
fn reads_back_what_any_style_writes() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..2_000 {
        let entries = random_entries(&mut rng, 0);
        let mut text = String::new();
        write(&entries, &mut rng, &mut text);
        let mut read = parse(&text, Zeros::Octal).unwrap_or_else(|e| panic!("{text}\n{e}"));
        without_lines(&mut read);
        assert_eq!(read, entries, "{text}");
    }
}
