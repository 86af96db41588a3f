//! Attested agents: creation, lookup, and the two-step serial rotation after a renewal.

use std::collections::HashMap;

use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;

use super::canonical::canonical_selectors;
use crate::error::DatastoreError;
use crate::model::AttestedAgent;
use lanyard_spiffe::{Selector, SpiffeId};

/// One row of `attested_agents`.
#[derive(sqlx::FromRow)]
struct AgentRow {
    spiffe_id: String,
    attestation_type: String,
    serial: String,
    expires_at: i64,
    new_serial: Option<String>,
    new_expires_at: i64,
    banned: bool,
    can_reattest: bool,
}

/// Records a new agent; the caller commits.
pub(super) async fn create(
    conn: &mut SqliteConnection,
    agent: &AttestedAgent,
    now: i64,
) -> Result<(), DatastoreError> {
    let known: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM attested_agents WHERE spiffe_id = ?")
            .bind(agent.id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    if known.is_some() {
        return Err(DatastoreError::AgentAlreadyExists(agent.id.clone()));
    }

    sqlx::query(
        "INSERT INTO attested_agents (spiffe_id, attestation_type, serial, expires_at, \
         new_serial, new_expires_at, banned, can_reattest, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(agent.id.as_str())
    .bind(&agent.attestation_type)
    .bind(&agent.serial)
    .bind(agent.expires_at)
    .bind(agent.new_serial.as_deref())
    .bind(agent.new_expires_at)
    .bind(agent.banned)
    .bind(agent.can_reattest)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for s in canonical_selectors(agent.selectors.clone()) {
        sqlx::query("INSERT INTO agent_selectors (agent_id, type, value) VALUES (?, ?, ?)")
            .bind(agent.id.as_str())
            .bind(s.kind())
            .bind(s.value())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The agent with this ID, if any.
pub(super) async fn get(
    conn: &mut SqliteConnection,
    id: &SpiffeId,
) -> Result<Option<AttestedAgent>, DatastoreError> {
    let row: Option<AgentRow> = sqlx::query_as(
        "SELECT spiffe_id, attestation_type, serial, expires_at, new_serial, new_expires_at, \
         banned, can_reattest FROM attested_agents WHERE spiffe_id = ?",
    )
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let selectors: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT agent_id, type, value FROM agent_selectors WHERE agent_id = ? ORDER BY type, value",
    )
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut selectors = group_selectors(selectors)?;
    Ok(Some(build(row, &mut selectors)?))
}

/// Every agent in ID order: two scans merged in memory.
pub(super) async fn list(
    conn: &mut SqliteConnection,
) -> Result<Vec<AttestedAgent>, DatastoreError> {
    let rows: Vec<AgentRow> = sqlx::query_as(
        "SELECT spiffe_id, attestation_type, serial, expires_at, new_serial, new_expires_at, \
         banned, can_reattest FROM attested_agents ORDER BY spiffe_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let selectors: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT agent_id, type, value FROM agent_selectors ORDER BY agent_id, type, value",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut selectors = group_selectors(selectors)?;
    rows.into_iter()
        .map(|row| build(row, &mut selectors))
        .collect()
}

/// Records a renewed SVID as the agent's new serial.
pub(super) async fn set_new_serial(
    pool: &SqlitePool,
    id: &SpiffeId,
    serial: &str,
    expires_at: i64,
) -> Result<(), DatastoreError> {
    let updated = sqlx::query(
        "UPDATE attested_agents SET new_serial = ?, new_expires_at = ? WHERE spiffe_id = ?",
    )
    .bind(serial)
    .bind(expires_at)
    .bind(id.as_str())
    .execute(pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DatastoreError::AgentNotFound(id.clone()));
    }
    Ok(())
}

/// Moves the new serial to current when `serial` is it; inside the caller's write transaction.
pub(super) async fn promote_serial(
    conn: &mut SqliteConnection,
    id: &SpiffeId,
    serial: &str,
) -> Result<(), DatastoreError> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT serial, new_serial FROM attested_agents WHERE spiffe_id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    let Some((current, new)) = row else {
        return Err(DatastoreError::AgentNotFound(id.clone()));
    };

    if new.as_deref() == Some(serial) {
        sqlx::query(
            "UPDATE attested_agents SET serial = new_serial, expires_at = new_expires_at, \
             new_serial = NULL, new_expires_at = 0 WHERE spiffe_id = ?",
        )
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
        Ok(())
    } else if current == serial {
        Ok(())
    } else {
        Err(DatastoreError::SerialMismatch {
            id: id.clone(),
            serial: serial.to_owned(),
        })
    }
}

fn group_selectors(
    rows: Vec<(String, String, String)>,
) -> Result<HashMap<String, Vec<Selector>>, DatastoreError> {
    let mut grouped: HashMap<String, Vec<Selector>> = HashMap::new();
    for (agent_id, kind, value) in rows {
        let selector = Selector::new(&kind, &value)
            .map_err(|e| DatastoreError::Corrupt(format!("selector of agent '{agent_id}': {e}")))?;
        grouped.entry(agent_id).or_default().push(selector);
    }
    Ok(grouped)
}

fn build(
    row: AgentRow,
    selectors: &mut HashMap<String, Vec<Selector>>,
) -> Result<AttestedAgent, DatastoreError> {
    let id = SpiffeId::parse(&row.spiffe_id)
        .map_err(|e| DatastoreError::Corrupt(format!("agent id '{}': {e}", row.spiffe_id)))?;
    Ok(AttestedAgent {
        selectors: selectors.remove(&row.spiffe_id).unwrap_or_default(),
        id,
        attestation_type: row.attestation_type,
        serial: row.serial,
        expires_at: row.expires_at,
        new_serial: row.new_serial,
        new_expires_at: row.new_expires_at,
        banned: row.banned,
        can_reattest: row.can_reattest,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{id, memory, sels};
    use super::*;
    use crate::Datastore;

    fn agent(name: &str) -> AttestedAgent {
        AttestedAgent {
            id: id(&format!(
                "spiffe://example.org/spire/agent/join_token/{name}"
            )),
            attestation_type: "join_token".into(),
            serial: "1001".into(),
            expires_at: 1_700_003_600,
            new_serial: None,
            new_expires_at: 0,
            banned: false,
            can_reattest: false,
            selectors: sels(&["join_token:x", "agent:b"]),
        }
    }

    #[tokio::test]
    async fn creates_gets_and_lists_agents() {
        let store = memory().await;
        let b = agent("b");
        let a = agent("a");
        store.create_agent(&b).await.unwrap();
        store.create_agent(&a).await.unwrap();

        let got = store.get_agent(&a.id).await.unwrap().unwrap();
        assert_eq!(
            got.selectors,
            sels(&["agent:b", "join_token:x"]),
            "stored sorted"
        );
        assert_eq!(
            AttestedAgent {
                selectors: a.selectors.clone(),
                ..got
            },
            a
        );

        let all = store.list_agents().await.unwrap();
        let ids: Vec<_> = all.iter().map(|x| x.id.clone()).collect();
        assert_eq!(ids, [a.id.clone(), b.id.clone()]);
        assert!(all.iter().all(|x| x.selectors.len() == 2));

        let missing = id("spiffe://example.org/spire/agent/nope");
        assert_eq!(store.get_agent(&missing).await.unwrap(), None);
    }

    #[tokio::test]
    async fn rejects_a_second_agent_with_the_same_id() {
        let store = memory().await;
        store.create_agent(&agent("a")).await.unwrap();
        let err = store.create_agent(&agent("a")).await.unwrap_err();
        assert!(matches!(err, DatastoreError::AgentAlreadyExists(ref x) if *x == agent("a").id));
    }

    #[tokio::test]
    async fn renewal_keeps_the_old_serial_until_the_new_one_is_used() {
        let store = memory().await;
        let a = agent("a");
        store.create_agent(&a).await.unwrap();

        store
            .set_agent_new_serial(&a.id, "2002", 1_700_007_200)
            .await
            .unwrap();
        let pending = store.get_agent(&a.id).await.unwrap().unwrap();
        assert_eq!(
            (pending.serial.as_str(), pending.expires_at),
            ("1001", 1_700_003_600)
        );
        assert_eq!(pending.new_serial.as_deref(), Some("2002"));
        assert_eq!(pending.new_expires_at, 1_700_007_200);

        // Presenting the old serial meanwhile changes nothing.
        store.promote_agent_serial(&a.id, "1001").await.unwrap();
        assert_eq!(store.get_agent(&a.id).await.unwrap().unwrap(), pending);

        store.promote_agent_serial(&a.id, "2002").await.unwrap();
        let promoted = store.get_agent(&a.id).await.unwrap().unwrap();
        assert_eq!(
            (promoted.serial.as_str(), promoted.expires_at),
            ("2002", 1_700_007_200)
        );
        assert_eq!((promoted.new_serial, promoted.new_expires_at), (None, 0));

        // The superseded serial is no longer accepted.
        let err = store.promote_agent_serial(&a.id, "1001").await.unwrap_err();
        assert!(
            matches!(err, DatastoreError::SerialMismatch { ref serial, .. } if serial == "1001")
        );
    }

    #[tokio::test]
    async fn serial_updates_of_unknown_agents_fail() {
        let store = memory().await;
        let ghost = id("spiffe://example.org/spire/agent/ghost");
        assert!(matches!(
            store.set_agent_new_serial(&ghost, "1", 1).await,
            Err(DatastoreError::AgentNotFound(_))
        ));
        assert!(matches!(
            store.promote_agent_serial(&ghost, "1").await,
            Err(DatastoreError::AgentNotFound(_))
        ));
    }
}
