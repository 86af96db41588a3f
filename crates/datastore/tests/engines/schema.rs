//! Opening with migrations disabled: fine on a current schema, refused on an old one.

use lanyard_datastore::{DatabaseConfig, Datastore, DatastoreError, SqlDatastore};

use crate::engine_tests;
use crate::support::Ctx;

engine_tests!(with_migrations_disabled_an_old_schema_is_refused);

async fn with_migrations_disabled_an_old_schema_is_refused(ctx: Ctx) {
    let config = DatabaseConfig {
        disable_migration: true,
        ..ctx.config.clone()
    };
    let current = SqlDatastore::connect(&config).await.unwrap();
    assert_eq!(current.latest_change().await.unwrap(), 0);
    current.close().await;

    // Forget the newest migration, as if the database were from an older Lanyard.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = \
         (SELECT v FROM (SELECT MAX(version) AS v FROM _sqlx_migrations) AS newest)",
    )
    .execute(&ctx.raw)
    .await
    .unwrap();
    let err = SqlDatastore::connect(&config).await.unwrap_err();
    assert!(matches!(err, DatastoreError::SchemaBehind { .. }), "{err}");
    assert!(err.to_string().contains("run the migration"), "{err}");
}

engine_tests!(a_refused_connection_names_the_target_but_never_the_password);

async fn a_refused_connection_names_the_target_but_never_the_password(ctx: Ctx) {
    let engine = ctx.config.engine;
    if engine == lanyard_datastore::Engine::Sqlite {
        // The file engine's counterpart: the error names the path that failed.
        let config = DatabaseConfig::new(engine, "/nonexistent-lanyard-dir/db.sqlite3");
        let err = SqlDatastore::connect(&config).await.unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-lanyard-dir"),
            "{err}"
        );
        return;
    }
    let url = &ctx.config.connection_string;
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let wrong = format!("{scheme}://{user}:Wr0ngSecretXyz@{host}");
    let err = SqlDatastore::connect(&DatabaseConfig::new(engine, wrong))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DatastoreError::Connect { .. }), "{message}");
    assert!(!message.contains("Wr0ngSecretXyz"), "{message}");
    assert!(message.contains(user), "{message}");
}
