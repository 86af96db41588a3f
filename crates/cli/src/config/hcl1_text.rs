//! Strings, escapes and heredocs: the tokens that carry text.

use super::super::error::ConfigError;
use super::{Lexer, is_digit, is_letter};

impl Lexer<'_> {
    /// A quoted string after its opening `"`. Inside `${ .. }` quotes do not end it; whether
    /// interpolation is allowed is the parser's call.
    pub(super) fn string(&mut self) -> Result<String, ConfigError> {
        let mut out = String::new();
        let mut braces = 0usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error("string not terminated: a closing `\"` is missing"));
            };
            match c {
                '\n' if braces == 0 => {
                    return Err(self.error(
                        "string not terminated before the end of the line: for text on several \
                         lines use a heredoc (<<EOF)",
                    ));
                }
                '"' if braces == 0 => return Ok(out),
                '$' if braces == 0 && self.peek() == Some('{') => {
                    self.bump();
                    braces = 1;
                    out.push_str("${");
                }
                '{' if braces > 0 => {
                    braces += 1;
                    out.push(c);
                }
                '}' if braces > 0 => {
                    braces -= 1;
                    out.push(c);
                }
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, ConfigError> {
        let simple = match self.bump() {
            Some('a') => '\u{7}',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('v') => '\u{b}',
            Some('\\') => '\\',
            Some('"') => '"',
            Some(d @ '0'..='7') => return self.code(Some(d), 8, 3),
            Some('x') => return self.code(None, 16, 2),
            Some('u') => return self.code(None, 16, 4),
            Some('U') => return self.code(None, 16, 8),
            other => {
                return Err(self.error(format!(
                    "illegal escape \\{}: use \\n, \\t, \\r, \\\\, \\\", \\x41, \\101, \\u00e9 \
                     or \\U0001F600",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        };
        Ok(simple)
    }

    /// `count` digits in `radix` (the first possibly read already) as one character.
    fn code(&mut self, first: Option<char>, radix: u32, count: usize) -> Result<char, ConfigError> {
        let mut digits: String = first.into_iter().collect();
        while digits.len() < count {
            match self.peek().filter(|c| c.is_digit(radix)) {
                Some(c) => {
                    digits.push(c);
                    self.bump();
                }
                None => {
                    return Err(self.error(format!(
                        "illegal escape: {count} digits in base {radix} expected, found {digits:?}"
                    )));
                }
            }
        }
        u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error(format!("illegal escape: {digits} is not a character")))
    }

    /// A heredoc after its first `<`: `<<EOF` or `<<-EOF`, the anchor alone on its line, and
    /// the text up to a line holding only the anchor (spaces around it allowed).
    pub(super) fn heredoc(&mut self) -> Result<String, ConfigError> {
        if self.bump() != Some('<') {
            return Err(self.error("a lone `<`: a heredoc starts with <<NAME"));
        }
        let indented = self.peek() == Some('-');
        if indented {
            self.bump();
        }
        let mut anchor = String::new();
        while let Some(c) = self.peek().filter(|&c| is_letter(c) || is_digit(c)) {
            anchor.push(c);
            self.bump();
        }
        if self.peek() == Some('\r') {
            self.bump();
        }
        if self.bump() != Some('\n') {
            return Err(self.error("a heredoc anchor (<<EOF) must end its line"));
        }
        if anchor.is_empty() {
            return Err(self.error("a heredoc needs a name after <<, such as <<EOF"));
        }
        let mut lines: Vec<String> = Vec::new();
        loop {
            let mut line = String::new();
            let mut ended = false;
            while let Some(c) = self.bump() {
                if c == '\n' {
                    ended = true;
                    break;
                }
                line.push(c);
            }
            // As in SPIRE, the closing line counts only when a line end follows it.
            if !ended {
                return Err(self.error(format!(
                    "heredoc not terminated: a line {anchor} followed by a line end is missing"
                )));
            }
            let bare = line.trim_end_matches('\r');
            if bare.trim_start() == anchor {
                let indent = bare[..bare.len() - anchor.len()].to_owned();
                return Ok(heredoc_text(&lines, &indent, indented));
            }
            lines.push(line);
        }
    }
}

/// SPIRE's value for a heredoc's `lines`: with `<<-`, the closing anchor's indentation is cut
/// from every line when all have it, else the text is kept as written; with `<<`, the closing
/// anchor's indentation stays at the end (HCL 1 does so).
fn heredoc_text(lines: &[String], indent: &str, indented: bool) -> String {
    let mut out = String::new();
    let strip = indented && lines.iter().all(|l| l.starts_with(indent));
    for line in lines {
        out.push_str(if strip { &line[indent.len()..] } else { line });
        out.push('\n');
    }
    if !indented {
        out.push_str(indent);
    }
    out
}
