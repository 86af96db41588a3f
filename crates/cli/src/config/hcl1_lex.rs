//! The tokens of HCL 1, the lenient dialect SPIRE reads its files with.
//!
//! What it accepts, taken from SPIRE v1.13's behaviour: identifiers of letters, digits, `_`, `-`
//! and `.` (starting with a letter or `_`, Unicode letters included); whole numbers in decimal,
//! hex (`0x1F`) and octal (`017`), with an optional `-`; fractions and exponents; `"strings"` with
//! C escapes (`\n`, `\"`, `\\`, `\x41`, `\101`, `\u00e9`, `\U0001F600`), where `${ .. }` may
//! hold quotes; heredocs (`<<EOF`, `<<-EOF`); `#`, `//` and `/* */` comments; spaces, tabs and
//! CR LF line ends. Anything else, a byte order mark included, is an illegal character, as in
//! SPIRE.

use super::error::ConfigError;

#[path = "hcl1_text.rs"]
mod text;

/// A token and where it starts (1-based line and column, columns counted in characters).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// A bare word: a key, a block label, or a misplaced `null`.
    Ident(String),
    /// `true` / `false`.
    Bool(bool),
    /// A whole number (a decimal beyond `i64` becomes a float, so that the reader can say it is
    /// too large).
    Int(i64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A quoted string, unescaped.
    Str(String),
    /// A heredoc's text: a value, never a key.
    Heredoc(String),
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Comma,
    Assign,
    /// `+`, `-` or `.` on their own: no HCL 1 value or key starts with them.
    Stray(char),
    Eof,
}

impl Kind {
    /// The token as a message shows it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Kind::Ident(s) => format!("`{s}`"),
            Kind::Bool(b) => format!("`{b}`"),
            Kind::Int(i) => format!("the number {i}"),
            Kind::Float(f) => format!("the number {f}"),
            Kind::Str(s) => format!("the string {}", super::clip(s)),
            Kind::Heredoc(_) => "a heredoc".into(),
            Kind::LBrace => "`{`".into(),
            Kind::RBrace => "`}`".into(),
            Kind::LBrack => "`[`".into(),
            Kind::RBrack => "`]`".into(),
            Kind::Comma => "`,`".into(),
            Kind::Assign => "`=`".into(),
            Kind::Stray(c) => format!("`{c}`"),
            Kind::Eof => "the end of the file".into(),
        }
    }
}

/// How a whole number written with a leading zero (`0644`) is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Zeros {
    /// Octal, as HCL 1 and so SPIRE read it: `017` is 15.
    Octal,
    /// Decimal digits, `0644` is 644: for readers that take the digits as written (the
    /// spiffe-helper file modes).
    Decimal,
}

/// Reads tokens one at a time from the text.
pub(crate) struct Lexer<'t> {
    chars: std::iter::Peekable<std::str::Chars<'t>>,
    line: usize,
    column: usize,
    zeros: Zeros,
}

fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphabetic())
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

impl<'t> Lexer<'t> {
    pub(crate) fn new(text: &'t str, zeros: Zeros) -> Self {
        Self {
            chars: text.chars().peekable(),
            line: 1,
            column: 0,
            zeros,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 0;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Syntax {
            line: self.line,
            column: self.column.max(1),
            message: message.into(),
        }
    }

    /// The next token, skipping spaces and comments.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] naming the rule the text breaks, at its line and column.
    pub(crate) fn next_token(&mut self) -> Result<Token, ConfigError> {
        loop {
            while self
                .peek()
                .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
            {
                self.bump();
            }
            let (line, column) = (self.line, self.column + 1);
            let Some(c) = self.bump() else {
                return Ok(Token {
                    kind: Kind::Eof,
                    line,
                    column,
                });
            };
            let kind = match c {
                '#' => {
                    self.line_comment();
                    continue;
                }
                '/' => {
                    self.slash_comment()?;
                    continue;
                }
                '{' => Kind::LBrace,
                '}' => Kind::RBrace,
                '[' => Kind::LBrack,
                ']' => Kind::RBrack,
                ',' => Kind::Comma,
                '=' => Kind::Assign,
                '"' => Kind::Str(self.string()?),
                '<' => Kind::Heredoc(self.heredoc()?),
                '-' if self.peek().is_some_and(|c| c.is_ascii_digit()) => self.number('-')?,
                '.' if self.peek().is_some_and(|c| c.is_ascii_digit()) => self.number('.')?,
                '+' | '-' | '.' => Kind::Stray(c),
                c if c.is_ascii_digit() => self.number(c)?,
                c if is_letter(c) => {
                    let mut word = String::from(c);
                    while let Some(c) = self
                        .peek()
                        .filter(|&c| is_letter(c) || is_digit(c) || c == '-' || c == '.')
                    {
                        word.push(c);
                        self.bump();
                    }
                    match word.as_str() {
                        "true" => Kind::Bool(true),
                        "false" => Kind::Bool(false),
                        _ => Kind::Ident(word),
                    }
                }
                '\u{feff}' => {
                    return Err(self.error(
                        "illegal character U+FEFF (a byte order mark): save the file as UTF-8 \
                         without BOM",
                    ));
                }
                other => {
                    return Err(self.error(format!(
                        "illegal character {other:?}: HCL has `key = value` and `key {{ .. }}`, \
                         strings in double quotes and #, // or /* */ comments"
                    )));
                }
            };
            return Ok(Token { kind, line, column });
        }
    }

    fn line_comment(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    fn slash_comment(&mut self) -> Result<(), ConfigError> {
        match self.bump() {
            Some('/') => {
                self.line_comment();
                Ok(())
            }
            Some('*') => {
                let mut star = false;
                loop {
                    match self.bump() {
                        None => return Err(self.error("comment not terminated: `/*` needs `*/`")),
                        Some('/') if star => return Ok(()),
                        Some(c) => star = c == '*',
                    }
                }
            }
            _ => Err(self.error("a lone `/`: comments start with //, # or /*")),
        }
    }

    /// A number whose first character (a digit, `-` or `.`) is read; the rest follows HCL 1:
    /// `0x` hex, a leading `0` octal, `.` or an exponent make a float.
    fn number(&mut self, first: char) -> Result<Kind, ConfigError> {
        let mut text = String::from(first);
        let take = |lexer: &mut Self, text: &mut String, ok: fn(char) -> bool| {
            while let Some(c) = lexer.peek().filter(|&c| ok(c)) {
                text.push(c);
                lexer.bump();
            }
        };
        if first == '-'
            && let Some(c) = self.bump()
        {
            text.push(c);
        }
        let digits = text.trim_start_matches('-').to_owned();
        if digits == "0" && self.peek().is_some_and(|c| c == 'x' || c == 'X') {
            self.bump();
            let mut hex = String::new();
            take(self, &mut hex, |c| c.is_ascii_hexdigit());
            let value = i64::from_str_radix(&hex, 16)
                .map_err(|_| self.error(format!("illegal hexadecimal number 0x{hex}")))?;
            return Ok(Kind::Int(if first == '-' { -value } else { value }));
        }
        take(self, &mut text, |c| c.is_ascii_digit());
        let mut float = first == '.';
        if self.peek() == Some('.') {
            float = true;
            text.push('.');
            self.bump();
            take(self, &mut text, |c| c.is_ascii_digit());
        }
        if self.peek().is_some_and(|c| c == 'e' || c == 'E') {
            float = true;
            text.push('e');
            self.bump();
            if let Some(sign) = self.peek().filter(|&c| c == '+' || c == '-') {
                text.push(sign);
                self.bump();
            }
            take(self, &mut text, |c| c.is_ascii_digit());
        }
        let bad = |lexer: &Self| lexer.error(format!("illegal number {text}"));
        if float {
            return text.parse().map(Kind::Float).map_err(|_| bad(self));
        }
        let unsigned = text.trim_start_matches('-');
        if self.zeros == Zeros::Octal && unsigned.len() > 1 && unsigned.starts_with('0') {
            // Octal, as in C and Go: SPIRE reads `bind_port = 017` as 15.
            let value = i64::from_str_radix(unsigned, 8)
                .map_err(|_| self.error(format!("illegal octal number {text}")))?;
            return Ok(Kind::Int(if first == '-' { -value } else { value }));
        }
        match text.parse::<i64>() {
            Ok(i) => Ok(Kind::Int(i)),
            Err(_) => text.parse().map(Kind::Float).map_err(|_| bad(self)),
        }
    }
}
