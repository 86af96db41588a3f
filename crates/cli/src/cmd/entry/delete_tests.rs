use super::*;
use crate::cmd::entry::batch::MAX_ITEMS_PER_CALL;

fn shape_error(json: &str) -> String {
    match parse_ids(json.as_bytes()) {
        Err(IdsError::Shape(message)) => message,
        Err(IdsError::Syntax(e)) => panic!("{json}: a syntax error, not a shape error: {e}"),
        Ok(ids) => panic!("{json}: accepted as {ids:?}"),
    }
}

#[test]
fn reads_spires_delete_shape_in_order() {
    let ids = parse_ids(br#"{"ids": ["b", "a", "b"]}"#).ok().unwrap();
    assert_eq!(ids, ["b", "a", "b"]);
}

#[test]
fn refuses_files_that_are_not_a_list_of_ids() {
    assert!(shape_error(r#"{"ids": ["a"], "entries": []}"#).contains("entries"));
    assert!(shape_error(r#"{"ids": [7]}"#).contains("expected a string"));
    assert!(shape_error(r#"{}"#).contains("ids"));
    assert!(shape_error(r#"["a"]"#).contains("{\"ids\""));
    assert!(shape_error(r#"{"ids": []}"#).contains("nothing to do"));
    assert!(matches!(
        parse_ids(b"{\"ids\": ["),
        Err(IdsError::Syntax(_))
    ));
}

#[tokio::test]
async fn outcomes_follow_request_order_across_calls() {
    let mut ids: Vec<String> = (0..2 * MAX_ITEMS_PER_CALL + 3)
        .map(|i| format!("id-{i}"))
        .collect();
    ids[7] = "x".repeat(MAX_CALL_BYTES);
    let total = ids.len();

    let mut calls = Vec::new();
    let outcomes = send(ids, async |batch: Vec<String>| {
        calls.push(batch.len());
        if calls.len() == 2 {
            return Err(tonic::Status::unavailable("server went away"));
        }
        Ok(batch
            .into_iter()
            .map(|id| {
                let code = if id == "id-3" {
                    Code::NotFound
                } else {
                    Code::Ok
                };
                (status(code, String::new()), id)
            })
            .collect())
    })
    .await;

    assert_eq!(calls, [MAX_ITEMS_PER_CALL, MAX_ITEMS_PER_CALL, 2]);
    assert_eq!(outcomes.len(), total);
    assert_eq!(outcomes[0], (types::Status::default(), "id-0".to_string()));
    assert_eq!(outcomes[3].0.code, Code::NotFound as i32);
    assert_eq!(outcomes[3].1, "id-3");
    assert_eq!(outcomes[7].0.code, Code::InvalidArgument as i32);
    assert!(outcomes[7].0.message.contains("limit of one call"));
    assert_eq!(
        outcomes[7].1.len(),
        MAX_CALL_BYTES,
        "names the ID it refused"
    );
    // The second call failed as a whole: each of its IDs carries that status and its own ID.
    let second = &outcomes[MAX_ITEMS_PER_CALL + 2];
    assert_eq!(second.0.code, Code::Unavailable as i32);
    assert_eq!(second.1, format!("id-{}", MAX_ITEMS_PER_CALL + 2));
    let last = outcomes.last().unwrap();
    assert_eq!(last.0.code, Code::Ok as i32);
    assert_eq!(last.1, format!("id-{}", total - 1));
}

#[tokio::test]
async fn a_short_answer_fails_every_id_of_that_call() {
    let outcomes = send(vec!["a".into(), "b".into()], async |_| {
        Ok(vec![(types::Status::default(), "a".into())])
    })
    .await;
    assert!(
        outcomes
            .iter()
            .all(|(s, _)| s.code == Code::Internal as i32 && s.message.contains("1 results"))
    );
    assert_eq!(outcomes[1].1, "b");
}

#[test]
fn any_failed_id_fails_the_command() {
    let ok = (types::Status::default(), "a".to_string());
    let missing = (status(Code::NotFound, "no such entry".into()), "b".into());
    assert!(report(OutputFormat::Pretty, std::slice::from_ref(&ok)).is_ok());
    let err = report(OutputFormat::Pretty, &[ok, missing]).unwrap_err();
    let failed = err.downcast_ref::<BatchFailed>().unwrap();
    assert_eq!((failed.failed, failed.total), (1, 2));
}
