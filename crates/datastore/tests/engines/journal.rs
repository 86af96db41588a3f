//! The CA journal blob.

use lanyard_ca::JournalStore;

use crate::engine_tests;
use crate::support::Ctx;

engine_tests!(journal_round_trips_and_keeps_only_the_last_blob);

async fn journal_round_trips_and_keeps_only_the_last_blob(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.load_journal().await.unwrap(), None);
    store.save_journal(b"{\"version\":1}").await.unwrap();
    assert_eq!(
        store.load_journal().await.unwrap().unwrap(),
        b"{\"version\":1}"
    );
    // Saving the same blob again is fine (MySQL reports no changed row for it).
    store.save_journal(b"{\"version\":1}").await.unwrap();
    store.save_journal(&[0, 1, 2, 255]).await.unwrap();
    assert_eq!(store.load_journal().await.unwrap().unwrap(), [0, 1, 2, 255]);
    let big = vec![7u8; 300_000];
    store.save_journal(&big).await.unwrap();
    assert_eq!(store.load_journal().await.unwrap().unwrap(), big);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ca_journal")
        .fetch_one(&ctx.raw)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
