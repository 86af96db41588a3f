use super::*;
use crate::cmd::entry::data::ItemError;

fn entry(path: &str) -> types::Entry {
    types::Entry {
        spiffe_id: Some(types::Spiffeid {
            trust_domain: "example.org".into(),
            path: path.into(),
        }),
        ..Default::default()
    }
}

#[test]
fn chunks_by_count() {
    let ranges = chunks(&vec![10; 2 * MAX_ITEMS_PER_CALL + 1]);
    assert_eq!(
        ranges,
        [
            0..MAX_ITEMS_PER_CALL,
            MAX_ITEMS_PER_CALL..2 * MAX_ITEMS_PER_CALL,
            2 * MAX_ITEMS_PER_CALL..2 * MAX_ITEMS_PER_CALL + 1
        ]
    );
}

#[test]
fn chunks_by_encoded_size() {
    let third = MAX_CALL_BYTES / 3;
    let ranges = chunks(&[third, third, third, 1, MAX_CALL_BYTES, 5]);
    assert_eq!(ranges, [0..3, 3..4, 4..5, 5..6]);
    for r in &ranges {
        let sizes = [third, third, third, 1, MAX_CALL_BYTES, 5];
        assert!(sizes[r.clone()].iter().sum::<usize>() <= MAX_CALL_BYTES);
    }
    assert!(chunks(&[]).is_empty());
}

#[test]
fn encoded_bound_grows_with_content() {
    let small = encoded_bound(&entry("/a"));
    let mut big = entry("/a");
    big.dns_names = vec!["x".repeat(1000)];
    assert!(encoded_bound(&big) >= small + 1000);
}

#[tokio::test]
async fn results_come_back_in_request_order_across_calls() {
    let mut items: Vec<Item> = (0..2 * MAX_ITEMS_PER_CALL + 3)
        .map(|i| Ok(entry(&format!("/{i}"))))
        .collect();
    items[5] = Err(ItemError {
        index: 5,
        message: "x509_svid_ttl 99999999999: out of range".into(),
    });
    let mut huge = entry("/huge");
    huge.hint = "h".repeat(MAX_CALL_BYTES);
    items[7] = Ok(huge);
    let total = items.len();

    let mut calls = Vec::new();
    let outcomes = send(items, async |entries: Vec<types::Entry>| {
        calls.push(entries.len());
        if calls.len() == 2 {
            return Err(tonic::Status::unavailable("server went away"));
        }
        Ok(entries
            .into_iter()
            .map(|e| (types::Status::default(), Some(e)))
            .collect())
    })
    .await;

    assert_eq!(calls, [MAX_ITEMS_PER_CALL, MAX_ITEMS_PER_CALL, 1]);
    assert_eq!(outcomes.len(), total);
    assert_eq!(
        outcomes[0]
            .1
            .as_ref()
            .unwrap()
            .spiffe_id
            .as_ref()
            .unwrap()
            .path,
        "/0"
    );
    assert_eq!(
        outcomes[6]
            .1
            .as_ref()
            .unwrap()
            .spiffe_id
            .as_ref()
            .unwrap()
            .path,
        "/6"
    );
    assert_eq!(outcomes[5].0.code, Code::InvalidArgument as i32);
    assert!(outcomes[5].0.message.contains("x509_svid_ttl"));
    assert_eq!(outcomes[7].0.code, Code::InvalidArgument as i32);
    assert!(outcomes[7].0.message.contains("limit of one call"));
    // The second call failed as a whole: each of its items carries that status.
    let second = &outcomes[MAX_ITEMS_PER_CALL + 2];
    assert_eq!(second.0.code, Code::Unavailable as i32);
    let last = outcomes.last().unwrap();
    assert_eq!(last.0.code, Code::Ok as i32);
    assert_eq!(
        last.1.as_ref().unwrap().spiffe_id.as_ref().unwrap().path,
        format!("/{}", total - 1)
    );
}
