//! CA journals: one opaque blob per server.

use std::sync::Arc;

use lanyard_ca::JournalStore;
use lanyard_datastore::{Datastore, Engine, ServerJournal};

use crate::engine_tests;
use crate::support::Ctx;

engine_tests!(
    journal_round_trips_and_keeps_only_the_last_blob,
    servers_sharing_a_database_keep_separate_journals,
    the_single_journal_of_an_older_database_goes_to_the_first_server_only
);

async fn journal_round_trips_and_keeps_only_the_last_blob(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.load_ca_journal("a").await.unwrap(), None);
    store
        .save_ca_journal("a", b"{\"version\":1}")
        .await
        .unwrap();
    assert_eq!(
        store.load_ca_journal("a").await.unwrap().unwrap(),
        b"{\"version\":1}"
    );
    // Saving the same blob again is fine (MySQL reports no changed row for it).
    store
        .save_ca_journal("a", b"{\"version\":1}")
        .await
        .unwrap();
    store.save_ca_journal("a", &[0, 1, 2, 255]).await.unwrap();
    assert_eq!(
        store.load_ca_journal("a").await.unwrap().unwrap(),
        [0, 1, 2, 255]
    );
    let big = vec![7u8; 300_000];
    store.save_ca_journal("a", &big).await.unwrap();
    assert_eq!(store.load_ca_journal("a").await.unwrap().unwrap(), big);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ca_journals")
        .fetch_one(&ctx.raw)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

async fn servers_sharing_a_database_keep_separate_journals(ctx: Ctx) {
    let store: Arc<dyn Datastore> = Arc::new(ctx.store);
    let a = ServerJournal::new(store.clone(), "server-a");
    let b = ServerJournal::new(store.clone(), "server-b");
    a.save_journal(b"journal of a").await.unwrap();
    assert_eq!(
        b.load_journal().await.unwrap(),
        None,
        "b has none of its own"
    );
    b.save_journal(b"journal of b").await.unwrap();
    a.save_journal(b"journal of a, later").await.unwrap();
    assert_eq!(b.load_journal().await.unwrap().unwrap(), b"journal of b");
    assert_eq!(
        a.load_journal().await.unwrap().unwrap(),
        b"journal of a, later"
    );
}

async fn the_single_journal_of_an_older_database_goes_to_the_first_server_only(ctx: Ctx) {
    // A database written before journals were per server holds one row in `ca_journal`.
    let insert = match ctx.config.engine {
        Engine::Postgres => "INSERT INTO ca_journal (id, data, updated_at) VALUES (1, $1, 0)",
        Engine::Sqlite | Engine::Mysql => {
            "INSERT INTO ca_journal (id, data, updated_at) VALUES (1, ?, 0)"
        }
    };
    sqlx::query(insert)
        .bind(b"old journal".to_vec())
        .execute(&ctx.raw)
        .await
        .unwrap();
    let store = ctx.store;
    assert_eq!(
        store.load_ca_journal("first").await.unwrap().unwrap(),
        b"old journal",
        "the server that used the database before keeps its CA"
    );
    store
        .save_ca_journal("first", b"old journal, saved")
        .await
        .unwrap();
    assert_eq!(
        store.load_ca_journal("second").await.unwrap(),
        None,
        "a second server does not take over the first one's CA"
    );
    assert_eq!(
        store.load_ca_journal("first").await.unwrap().unwrap(),
        b"old journal, saved"
    );
}

engine_tests!(a_database_serves_the_trust_domain_that_claimed_it_first);

async fn a_database_serves_the_trust_domain_that_claimed_it_first(ctx: Ctx) {
    let store = ctx.store;
    let ours = lanyard_spiffe::TrustDomain::new("example.org").unwrap();
    let theirs = lanyard_spiffe::TrustDomain::new("other.org").unwrap();
    store.claim_trust_domain(&ours).await.unwrap();
    store.claim_trust_domain(&ours).await.unwrap();
    let err = store.claim_trust_domain(&theirs).await.unwrap_err();
    assert!(
        matches!(
            err,
            lanyard_datastore::DatastoreError::TrustDomainMismatch { .. }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("'example.org'") && message.contains("'other.org'"),
        "{message}"
    );
}
