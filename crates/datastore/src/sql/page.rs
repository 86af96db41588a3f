//! Page tokens: opaque to callers, the hex of the last key of the previous page to us.

use crate::error::DatastoreError;

/// The token for a page that ended at `last_key`.
pub(crate) fn encode(last_key: &str) -> String {
    hex::encode(last_key)
}

/// The last key of the previous page. `method` names the listing, so the error can say which
/// method's tokens are expected.
pub(crate) fn decode(token: &str, method: &str) -> Result<String, DatastoreError> {
    let invalid = || {
        DatastoreError::InvalidInput(format!(
            "page token '{token}' was not issued by this datastore: pass back a token returned \
             by {method}"
        ))
    };
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let key = String::from_utf8(bytes).map_err(|_| invalid())?;
    if key.is_empty() {
        return Err(invalid());
    }
    Ok(key)
}

/// Splits a page of `page_size + 1` fetched rows into the page and the next token: one row
/// more than asked says another page follows. `page_size` 0 means everything was fetched.
pub(crate) fn finish<T>(
    mut rows: Vec<T>,
    page_size: u32,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let page_len = usize::try_from(page_size).unwrap_or(usize::MAX);
    if page_size > 0 && rows.len() > page_len {
        rows.truncate(page_len);
        let next = rows.last().map(|row| encode(&key(row)));
        (rows, next)
    } else {
        (rows, None)
    }
}

/// The `LIMIT` to ask for: one more than the page size, or none for page size 0.
pub(crate) fn limit(page_size: u32) -> Option<i64> {
    (page_size > 0).then(|| i64::from(page_size) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_tokens_are_refused() {
        assert_eq!(decode(&encode("id-3"), "list_entries").unwrap(), "id-3");
        for bad in ["zz", "", "ff", "not a token"] {
            let err = decode(bad, "list_entries").unwrap_err();
            assert!(err.to_string().contains("list_entries"), "{err}");
        }
    }

    #[test]
    fn one_extra_row_means_another_page() {
        let (page, next) = finish(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!((page, next), (vec![1, 2], Some(encode("2"))));
        let (page, next) = finish(vec![1, 2], 2, |n| n.to_string());
        assert_eq!((page, next), (vec![1, 2], None));
        let (page, next) = finish(vec![1, 2, 3], 0, |n| n.to_string());
        assert_eq!((page, next), (vec![1, 2, 3], None));
    }
}
