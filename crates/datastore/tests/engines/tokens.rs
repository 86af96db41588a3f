//! Join tokens: single use, stored hashed.

use lanyard_datastore::{Datastore, DatastoreError, TokenUse};

use crate::engine_tests;
use crate::support::Ctx;

engine_tests!(
    a_token_is_accepted_once_then_reported_as_reused,
    an_expired_token_is_refused_and_stays_unused,
    unknown_and_malformed_tokens_are_unknown,
    rejects_repeated_empty_and_oversized_tokens,
    stores_only_a_hash_of_the_token,
    concurrent_consumers_get_exactly_one_acceptance,
    pruning_removes_only_tokens_expired_before_the_cutoff,
);

const NOW: i64 = 1_700_000_000;

async fn a_token_is_accepted_once_then_reported_as_reused(ctx: Ctx) {
    let store = ctx.store;
    store.create_join_token("tok-1", NOW + 600).await.unwrap();
    assert_eq!(
        store.consume_join_token("tok-1", NOW).await.unwrap(),
        TokenUse::Accepted
    );
    assert_eq!(
        store.consume_join_token("tok-1", NOW + 1).await.unwrap(),
        TokenUse::AlreadyUsed
    );
    // Still a reuse, not an expiry, once the token's lifetime is over.
    assert_eq!(
        store.consume_join_token("tok-1", NOW + 601).await.unwrap(),
        TokenUse::AlreadyUsed
    );
}

async fn an_expired_token_is_refused_and_stays_unused(ctx: Ctx) {
    let store = ctx.store;
    store.create_join_token("tok-2", NOW).await.unwrap();
    assert_eq!(
        store.consume_join_token("tok-2", NOW).await.unwrap(),
        TokenUse::Expired
    );
    assert_eq!(
        store.consume_join_token("tok-2", NOW + 5).await.unwrap(),
        TokenUse::Expired
    );
    assert_eq!(
        store.consume_join_token("tok-2", NOW - 1).await.unwrap(),
        TokenUse::Accepted
    );
}

async fn unknown_and_malformed_tokens_are_unknown(ctx: Ctx) {
    let store = ctx.store;
    store.create_join_token("tok-3", NOW + 600).await.unwrap();
    assert_eq!(
        store.consume_join_token("tok-4", NOW).await.unwrap(),
        TokenUse::Unknown
    );
    assert_eq!(
        store.consume_join_token("", NOW).await.unwrap(),
        TokenUse::Unknown
    );
    let huge = "x".repeat(1025);
    assert_eq!(
        store.consume_join_token(&huge, NOW).await.unwrap(),
        TokenUse::Unknown
    );
}

async fn rejects_repeated_empty_and_oversized_tokens(ctx: Ctx) {
    let store = ctx.store;
    store.create_join_token("tok-5", NOW).await.unwrap();
    let err = store.create_join_token("tok-5", NOW + 1).await.unwrap_err();
    assert!(matches!(err, DatastoreError::TokenAlreadyExists));
    assert!(
        !err.to_string().contains("tok-5"),
        "the message must not repeat the secret"
    );
    assert!(matches!(
        store.create_join_token("", NOW).await,
        Err(DatastoreError::InvalidInput(_))
    ));
    let huge = "x".repeat(1025);
    assert!(matches!(
        store.create_join_token(&huge, NOW).await,
        Err(DatastoreError::InvalidInput(_))
    ));
}

async fn stores_only_a_hash_of_the_token(ctx: Ctx) {
    let store = ctx.store;
    store
        .create_join_token("secret-token-value", NOW)
        .await
        .unwrap();
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM join_tokens")
        .fetch_one(&ctx.raw)
        .await
        .unwrap();
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains("secret"));
}

async fn concurrent_consumers_get_exactly_one_acceptance(ctx: Ctx) {
    let store = ctx.store;
    store.create_join_token("shared", NOW + 600).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_join_token("shared", NOW).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    let accepted = outcomes
        .iter()
        .filter(|o| **o == TokenUse::Accepted)
        .count();
    assert_eq!(accepted, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, TokenUse::Accepted | TokenUse::AlreadyUsed))
    );
}

async fn pruning_removes_only_tokens_expired_before_the_cutoff(ctx: Ctx) {
    let store = ctx.store;
    store.create_join_token("old", NOW - 10).await.unwrap();
    store.create_join_token("new", NOW + 10).await.unwrap();
    assert_eq!(store.prune_join_tokens(NOW).await.unwrap(), 1);
    assert_eq!(
        store.consume_join_token("old", NOW - 20).await.unwrap(),
        TokenUse::Unknown
    );
    assert_eq!(
        store.consume_join_token("new", NOW).await.unwrap(),
        TokenUse::Accepted
    );
}
