//! Small pieces every admin command uses: counted nouns, per-item batch statuses and paged
//! lists.

use lanyard_proto::spire::api::types;
use tonic::Code;

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
        anyhow::bail!(
            "{what}: {} ({:?})",
            status.message,
            Code::from_i32(status.code)
        );
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
}
