//! Small pieces every admin command uses: counted nouns, per-item batch statuses, paged lists
//! and the JSON form of a failure.
//!
//! # Failures with `--output json`
//!
//! A script reading stdout must see a failure there too, not only the exit status and the text
//! on stderr. Every admin command therefore fails in one of two shapes, always with a non-zero
//! exit and the human message on stderr as well:
//!
//! - batch writes (`entry create`, `entry update`) print SPIRE's per-item response,
//!   `{"results": [{"status": {"code": 6, "message": "..."}, "entry": {...}}, ...]}`, one
//!   result per requested item in request order (numeric gRPC codes, as protobuf JSON of
//!   `spire.api.types.Status` has them), a failed item with the entry as requested; an item
//!   refused before sending (a bad TTL or ID in `--data`) has code 3 (`InvalidArgument`) and
//!   no `entry` member; `entry delete` answers the same way with the ID instead of the entry,
//!   `{"results": [{"status": {...}, "id": "..."}]}`;
//! - every other failure (an RPC refused, an item of a one-item call refused, a socket that is
//!   not there) prints `{"error": {"code": "NotFound", "message": "..."}}`, where `code` is the
//!   name of the server's gRPC code, or `Unknown` when the failure happened before the server
//!   answered, and `message` is the whole error as stderr shows it.

use lanyard_proto::spire::api::types;
use serde_json::json;
use tonic::Code;

use super::OutputFormat;
use crate::output;

/// The server refused a call, or one item of it: what was attempted, with its code and words.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message} ({code:?})")]
pub(crate) struct ApiError {
    what: String,
    code: Code,
    message: String,
}

/// Some items of a batch failed; their statuses have already been printed.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} {noun} could not be {verb}")]
pub(crate) struct BatchFailed {
    /// Items whose status was not OK.
    pub(crate) failed: usize,
    /// Items requested.
    pub(crate) total: usize,
    /// What the items are (`entries`).
    pub(crate) noun: &'static str,
    /// Past participle of the operation (`created`).
    pub(crate) verb: &'static str,
}

/// Turns an RPC failure into an [`ApiError`] that keeps the server's words and code.
pub(crate) fn rpc_error(what: &str, status: tonic::Status) -> anyhow::Error {
    ApiError {
        what: what.to_string(),
        code: status.code(),
        message: status.message().to_string(),
    }
    .into()
}

/// Passes `result` on; a failure in JSON mode is first printed on stdout as the `{"error":
/// ...}` object the module doc describes (a [`BatchFailed`] has printed its results already).
///
/// # Errors
///
/// `result`'s error, unchanged, so the exit status stays non-zero.
pub(crate) fn finish(format: OutputFormat, result: anyhow::Result<()>) -> anyhow::Result<()> {
    let Err(e) = result else {
        return Ok(());
    };
    if format == OutputFormat::Json && e.downcast_ref::<BatchFailed>().is_none() {
        // A failure to print the error object must not hide the error itself.
        let _ = output::print_json(&error_json(&e));
    }
    Err(e)
}

/// `{"error": {"code": ..., "message": ...}}` for `e`.
fn error_json(e: &anyhow::Error) -> serde_json::Value {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<ApiError>())
        .map_or(Code::Unknown, |a| a.code);
    json!({"error": {"code": format!("{code:?}"), "message": format!("{e:#}")}})
}

/// `1 entry`, `2 entries`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A count from the server as a `usize` for [`plural`]; the wire type is signed.
pub(crate) fn count(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Fails with the item's status (the server's words and the gRPC code) when it is not OK.
///
/// # Errors
///
/// `what` followed by the server's message, when the status is not OK or is missing (SPIRE
/// servers always set it).
pub(crate) fn check(status: Option<&types::Status>, what: &str) -> anyhow::Result<()> {
    let Some(status) = status else {
        anyhow::bail!("{what}: the server answered without a status");
    };
    if status.code != Code::Ok as i32 {
        return Err(ApiError {
            what: what.to_string(),
            code: Code::from_i32(status.code),
            message: status.message.clone(),
        }
        .into());
    }
    Ok(())
}

/// The one result of a batch call made with one item, once its status is OK.
///
/// # Errors
///
/// When the server answered with no result, or as [`check`] when the result's status (which
/// `status` reads) is not OK; `what` starts the message.
pub(crate) fn only_result<R>(
    results: Vec<R>,
    status: impl Fn(&R) -> Option<&types::Status>,
    what: &str,
) -> anyhow::Result<R> {
    let result = results
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the server answered without a result"))?;
    check(status(&result), what)?;
    Ok(result)
}

/// Every item of a paged list call. `fetch` reads the page a token names (the first for an
/// empty token) and returns its items and the next token, which is empty after the last page.
///
/// # Errors
///
/// The first error of `fetch`.
pub(crate) async fn all_pages<T>(
    mut fetch: impl AsyncFnMut(String) -> anyhow::Result<(Vec<T>, String)>,
) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (page, next) = fetch(page_token).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        page_token = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_picks_the_noun() {
        assert_eq!(plural(1, "bundle", "bundles"), "1 bundle");
        assert_eq!(plural(0, "bundle", "bundles"), "0 bundles");
        assert_eq!(count(-3), 0);
    }

    #[test]
    fn check_keeps_the_servers_words() {
        let denied = types::Status {
            code: Code::FailedPrecondition as i32,
            message: "bundle other.org is used by 2 entries".into(),
        };
        let err = check(Some(&denied), "cannot delete")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("used by 2 entries") && err.contains("FailedPrecondition"),
            "{err}"
        );
        assert!(check(None, "x").is_err());
        assert!(check(Some(&types::Status::default()), "x").is_ok());
    }

    #[test]
    fn json_error_carries_the_servers_code_name() {
        let refused = check(
            Some(&types::Status {
                code: Code::NotFound as i32,
                message: "no such entry".into(),
            }),
            "cannot delete entry \"x\"",
        )
        .unwrap_err()
        .context("outer");
        let v = error_json(&refused);
        assert_eq!(v["error"]["code"], "NotFound");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("no such entry") && message.starts_with("outer"),
            "{message}"
        );

        let local = error_json(&anyhow::anyhow!("admin socket /x does not exist"));
        assert_eq!(local["error"]["code"], "Unknown");
    }

    #[test]
    fn rpc_error_keeps_code_and_words() {
        let e = rpc_error(
            "cannot ban agent a",
            tonic::Status::permission_denied("not admin"),
        );
        assert_eq!(error_json(&e)["error"]["code"], "PermissionDenied");
        assert_eq!(
            e.to_string(),
            "cannot ban agent a: not admin (PermissionDenied)"
        );
    }
}
