//! HCL 1 text to [`Entry`]s: the grammar SPIRE reads, so that a file SPIRE accepts parses here.
//!
//! A body is a list of items, each `key = value` or `key "label" .. { body }`, separated by
//! nothing, line ends or commas (`a { b = 1, c = 2 }` and `a { b { c = 1 } }` on one line are
//! fine). Keys and labels are bare words or quoted strings. A value is a number, `true`/`false`,
//! a string, a heredoc, a list `[ .. ]` (commas between the elements, one after the last
//! allowed) or an object `{ body }`. Strings holding `${ .. }` are refused: SPIRE would keep the
//! text as written, which in a config file always means a forgotten `-expandEnv`.

use super::error::ConfigError;
use super::hcl::{Entry, Value};
pub(crate) use super::hcl1_lex::Zeros;
use super::hcl1_lex::{Kind, Lexer, Token};

/// Parses a whole file into its top-level items, reading numbers with a leading zero as
/// `zeros` says.
///
/// # Errors
///
/// [`ConfigError::Syntax`] with the line, column and the rule broken, or
/// [`ConfigError::InvalidValue`] for a string with interpolation.
pub(crate) fn parse(text: &str, zeros: Zeros) -> Result<Vec<Entry>, ConfigError> {
    let mut parser = Parser {
        lexer: Lexer::new(text, zeros),
        ahead: None,
        depth: 0,
    };
    parser.body(None)
}

/// Deeper nesting than this is refused, so that `[[[[..` cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'t> {
    lexer: Lexer<'t>,
    ahead: Option<Token>,
    depth: usize,
}

fn syntax(token: &Token, message: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        line: token.line,
        column: token.column,
        message: message.into(),
    }
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Token, ConfigError> {
        match self.ahead.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn peek(&mut self) -> Result<&Token, ConfigError> {
        if self.ahead.is_none() {
            self.ahead = Some(self.lexer.next_token()?);
        }
        Ok(self
            .ahead
            .as_ref()
            .unwrap_or_else(|| unreachable!("filled above")))
    }

    /// Goes `levels` deeper: a block's labels count, as each becomes a level of nesting.
    fn enter(&mut self, at: &Token, levels: usize) -> Result<(), ConfigError> {
        self.depth += levels;
        if self.depth > MAX_DEPTH {
            return Err(syntax(
                at,
                format!("nesting deeper than {MAX_DEPTH} levels: no SPIRE setting is that deep"),
            ));
        }
        Ok(())
    }

    /// Items up to the end of the file (`open` is `None`) or up to the `}` closing the brace
    /// `open`, which is consumed.
    fn body(&mut self, open: Option<&Token>) -> Result<Vec<Entry>, ConfigError> {
        let mut entries = Vec::new();
        loop {
            let token = self.peek()?.clone();
            match (&token.kind, open) {
                (Kind::Eof, None) => return Ok(entries),
                (Kind::Eof, Some(open)) => {
                    return Err(syntax(
                        &token,
                        format!("the `{{` at line {} is never closed by a `}}`", open.line),
                    ));
                }
                (Kind::RBrace, Some(_)) => {
                    self.next()?;
                    return Ok(entries);
                }
                (Kind::RBrace, None) => {
                    return Err(syntax(&token, "a `}` without a `{` to close"));
                }
                _ => {}
            }
            entries.push(self.item()?);
            if self.peek()?.kind == Kind::Comma {
                self.next()?;
            }
        }
    }

    /// `key = value` or `key "label" .. { body }`.
    fn item(&mut self) -> Result<Entry, ConfigError> {
        let mut keys: Vec<Token> = Vec::new();
        loop {
            let token = self.next()?;
            match &token.kind {
                Kind::Ident(_) | Kind::Str(_) => keys.push(token),
                Kind::Assign | Kind::LBrace if keys.is_empty() => {
                    return Err(syntax(
                        &token,
                        format!("{} without a key before it", token.kind.describe()),
                    ));
                }
                Kind::Assign if keys.len() > 1 => {
                    return Err(syntax(
                        &token,
                        format!(
                            "`{}` has labels, so it is a block: write `{{` after them, not `=`",
                            key_text(&keys[0])
                        ),
                    ));
                }
                Kind::Assign => {
                    let key = key_text(&keys[0]);
                    let value = self.value(&key, &token)?;
                    return Ok(entry(&keys, value));
                }
                Kind::LBrace => {
                    self.enter(&token, keys.len())?;
                    let body = self.body(Some(&token))?;
                    self.depth -= keys.len();
                    return Ok(entry(&keys, Value::Object(body)));
                }
                other => {
                    let message = match keys.first() {
                        Some(key) => format!(
                            "key `{}` must be followed by `=` or `{{`, found {}",
                            key_text(key),
                            other.describe()
                        ),
                        None => format!(
                            "expected a key (a name or a quoted string), found {}",
                            other.describe()
                        ),
                    };
                    return Err(syntax(&token, message));
                }
            }
        }
    }

    /// The value after `key =` (`after` is the `=`), or an element of a list (`after` is the
    /// token before it). A missing value is reported where it should have been.
    fn value(&mut self, key: &str, after: &Token) -> Result<Value, ConfigError> {
        let token = self.next()?;
        Ok(match token.kind {
            Kind::Bool(b) => Value::Bool(b),
            Kind::Int(i) => Value::Int(i),
            Kind::Float(f) => Value::Float(f),
            Kind::Str(ref s) | Kind::Heredoc(ref s) if s.contains("${") => {
                return Err(ConfigError::InvalidValue {
                    key: key.to_owned(),
                    value: super::clip(s),
                    line: token.line,
                    rule: "HCL interpolation is not supported: to use environment variables \
                           pass --expand-env, which replaces $NAME and ${NAME} before parsing"
                        .to_owned(),
                });
            }
            Kind::Str(s) | Kind::Heredoc(s) => Value::String(s),
            Kind::LBrace => {
                self.enter(&token, 1)?;
                let body = self.body(Some(&token))?;
                self.depth -= 1;
                Value::Object(body)
            }
            Kind::LBrack => {
                self.enter(&token, 1)?;
                let list = self.list(key, &token)?;
                self.depth -= 1;
                Value::List(list)
            }
            ref other => {
                let at = if token.line == after.line {
                    token.clone()
                } else {
                    Token {
                        kind: Kind::Eof,
                        line: after.line,
                        column: after.column + 1,
                    }
                };
                return Err(syntax(
                    &at,
                    format!(
                        "{key} = {}: a value is a string, a number, true, false, a list [..] \
                         or an object {{..}}",
                        other.describe()
                    ),
                ));
            }
        })
    }

    /// The elements after `[`, up to and with the closing `]`. As in SPIRE, commas may also
    /// lead, trail or repeat (`[, "a",, "b",]`); two elements without one between are refused.
    fn list(&mut self, key: &str, open: &Token) -> Result<Vec<Value>, ConfigError> {
        let mut items = Vec::new();
        loop {
            let token = self.peek()?.clone();
            match token.kind {
                Kind::RBrack => {
                    self.next()?;
                    return Ok(items);
                }
                Kind::Comma => {
                    self.next()?;
                    continue;
                }
                Kind::Eof => {
                    return Err(syntax(
                        &token,
                        format!("the `[` at line {} is never closed by a `]`", open.line),
                    ));
                }
                _ => items.push(self.value(key, &token)?),
            }
            let after = self.peek()?;
            if !matches!(after.kind, Kind::Comma | Kind::RBrack) {
                return Err(syntax(
                    after,
                    format!(
                        "{} in the list of {key}: list elements are separated by commas",
                        after.kind.describe()
                    ),
                ));
            }
        }
    }
}

fn key_text(token: &Token) -> String {
    match &token.kind {
        Kind::Ident(s) | Kind::Str(s) => s.clone(),
        other => other.describe(),
    }
}

fn entry(keys: &[Token], value: Value) -> Entry {
    Entry {
        key: key_text(&keys[0]),
        labels: keys[1..].iter().map(key_text).collect(),
        line: keys[0].line,
        value,
    }
}

#[cfg(test)]
#[path = "hcl1_tests.rs"]
mod tests;
