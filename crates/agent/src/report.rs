//! Showing an error whole in one line: its message, then each of its causes once.
//!
//! The agent's errors keep their causes walkable (`source`) and leave them out of their own
//! message, so a chain walker such as anyhow's `{:#}` prints every cause once. Log lines and
//! messages built from an error use [`ErrorChain`] to show the causes too.

use std::error::Error;
use std::fmt;

/// Displays an error as `message: cause: cause`. A cause whose text is already shown is
/// skipped: some dependencies repeat their source in their own message (tonic, for one).
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        append_causes(&mut text, self.0.source());
        f.write_str(&text)
    }
}

/// Appends `: cause` for every cause in the chain from `first` whose text `text` does not
/// already contain. tonic's transport error is skipped: it only says `transport error`, and its
/// own causes say what happened.
pub(crate) fn append_causes(text: &mut String, first: Option<&(dyn Error + 'static)>) {
    let mut next = first;
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        let says_something = !cause_text.is_empty() && !cause.is::<tonic::transport::Error>();
        if says_something && !text.contains(&cause_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    /// A dependency error that repeats its cause in its own message.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Echo(#[source] std::io::Error);

    #[test]
    fn shows_every_cause_once() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(ErrorChain(&e).to_string(), "outer: disk on fire");

        let echo = Echo(std::io::Error::other("connection refused"));
        assert_eq!(ErrorChain(&echo).to_string(), "connection refused");
    }
}
