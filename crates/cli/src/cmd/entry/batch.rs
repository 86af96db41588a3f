//! Sending a batch of entries in calls the server accepts, and putting the per-item results
//! back in request order.

use std::ops::Range;

use lanyard_proto::spire::api::types;
use tonic::Code;

use super::data::Item;

/// Items per call. The server refuses more than 10,000 in one batch; a smaller call also keeps
/// the response (each entry echoed with its ID and status) well under the message limit.
pub(crate) const MAX_ITEMS_PER_CALL: usize = 1_000;

/// Encoded bytes of entries per call: tonic's server refuses messages over 4 MiB, and 1 MiB is
/// left for the request framing and for the larger response.
pub(crate) const MAX_CALL_BYTES: usize = 3 * 1024 * 1024;

/// The status and entry the server (or the client, for an item never sent) gave one item.
pub(crate) type Outcome = (types::Status, Option<types::Entry>);

/// Sends the valid `items` through `call`, at most [`MAX_ITEMS_PER_CALL`] and
/// [`MAX_CALL_BYTES`] at a time, and returns one outcome per item in order. Items refused
/// while parsing, or too large for any call, get `InvalidArgument` without being sent; when a
/// whole call fails, each of its items gets that call's status, and later calls still go out.
pub(crate) async fn send(
    items: Vec<Item>,
    mut call: impl AsyncFnMut(Vec<types::Entry>) -> Result<Vec<Outcome>, tonic::Status>,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut to_send = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item.map(|e| (encoded_bound(&e), e)) {
            Ok((size, _)) if size > MAX_CALL_BYTES => {
                outcomes[i] = Some(refused(format!(
                    "entries[{i}]: about {size} bytes encoded: over the {MAX_CALL_BYTES}-byte \
                     limit of one call"
                )));
            }
            Ok((size, e)) => to_send.push((i, size, e)),
            Err(e) => outcomes[i] = Some(refused(e.message)),
        }
    }

    let sizes: Vec<usize> = to_send.iter().map(|(_, size, _)| *size).collect();
    for range in chunks(&sizes) {
        let slice = &to_send[range];
        let entries = slice.iter().map(|(_, _, e)| e.clone()).collect();
        let results = match call(entries).await {
            Ok(results) if results.len() == slice.len() => results,
            Ok(results) => {
                let lost = status(
                    Code::Internal,
                    format!(
                        "the server answered {} results for {} items",
                        results.len(),
                        slice.len()
                    ),
                );
                vec![(lost, None); slice.len()]
            }
            Err(s) => vec![(status(s.code(), s.message().to_string()), None); slice.len()],
        };
        for ((i, _, _), outcome) in slice.iter().zip(results) {
            outcomes[*i] = Some(outcome);
        }
    }

    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| refused("not sent".into())))
        .collect()
}

/// Ranges of consecutive items, each within [`MAX_ITEMS_PER_CALL`] and [`MAX_CALL_BYTES`]
/// (`sizes` are the items' encoded sizes, each at most [`MAX_CALL_BYTES`]).
pub(crate) fn chunks(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == MAX_ITEMS_PER_CALL || bytes + size > MAX_CALL_BYTES) {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

/// An upper bound of the entry's protobuf encoding inside the request: the bytes of every
/// string and ID plus, per field, the most a tag, length and varint take.
pub(crate) fn encoded_bound(e: &types::Entry) -> usize {
    // Tag (2) + length varint (5), or tag + a 10-byte varint: 12 covers either.
    const FIELD: usize = 12;
    let id = |id: Option<&types::Spiffeid>| {
        id.map_or(0, |id| id.trust_domain.len() + id.path.len() + 3 * FIELD)
    };
    let strings = |v: &[String]| v.iter().map(|s| s.len() + FIELD).sum::<usize>();
    let selectors = e
        .selectors
        .iter()
        .map(|s| s.r#type.len() + s.value.len() + 3 * FIELD)
        .sum::<usize>();
    FIELD
        + e.id.len()
        + id(e.spiffe_id.as_ref())
        + id(e.parent_id.as_ref())
        + selectors
        + strings(&e.federates_with)
        + strings(&e.dns_names)
        + e.hint.len()
        + 16 * FIELD
}

fn status(code: Code, message: String) -> types::Status {
    types::Status {
        code: code as i32,
        message,
    }
}

fn refused(message: String) -> Outcome {
    (status(Code::InvalidArgument, message), None)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
