//! Attested agents: creation, lookup, the two-step serial rotation after a renewal, and the
//! operator actions (evict, ban, re-attest).

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::canonical::canonical_selectors;
use super::changes;
use super::exec::{Sql, Tx, flag, int, opt_text, text};
use crate::change::ChangeKind;
use crate::error::DatastoreError;
use crate::model::AttestedAgent;
use lanyard_spiffe::{Selector, SpiffeId};

/// The columns [`build`] reads, as selected from `attested_agents a`.
pub(super) const AGENT_COLUMNS: &str = "SELECT a.spiffe_id, a.attestation_type, a.serial, \
     a.expires_at, a.new_serial, a.new_expires_at, a.banned, a.can_reattest \
     FROM attested_agents a";

/// Records a new agent and the change; the caller commits.
pub(super) async fn create(
    tx: &mut Tx,
    agent: &AttestedAgent,
    now: i64,
) -> Result<(), DatastoreError> {
    if exists(tx, &agent.id).await? {
        return Err(DatastoreError::AgentAlreadyExists(agent.id.clone()));
    }
    tx.execute(
        Sql::new(
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
        .bind(now),
    )
    .await?;
    insert_selectors(tx, &agent.id, &agent.selectors).await?;
    changes::record(tx, ChangeKind::Agent, agent.id.as_str(), now).await
}

/// The agent with this ID, if any.
pub(super) async fn get(
    tx: &mut Tx,
    id: &SpiffeId,
) -> Result<Option<AttestedAgent>, DatastoreError> {
    let mut q = Sql::new(AGENT_COLUMNS);
    q.push(" WHERE a.spiffe_id = ").push_bind(id.as_str());
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    let selectors = tx
        .fetch_all(
            Sql::new("SELECT agent_id, type, value FROM agent_selectors WHERE agent_id = ?")
                .bind(id.as_str()),
        )
        .await?;
    let mut selectors = group_selectors(selectors)?;
    Ok(Some(build(&row, &mut selectors)?))
}

/// Every agent in ID order: two scans merged in memory.
pub(super) async fn list(tx: &mut Tx) -> Result<Vec<AttestedAgent>, DatastoreError> {
    let mut q = Sql::new(AGENT_COLUMNS);
    q.push(" ORDER BY a.spiffe_id");
    let rows = tx.fetch_all(q).await?;
    let selectors = tx
        .fetch_all(Sql::new(
            "SELECT agent_id, type, value FROM agent_selectors",
        ))
        .await?;
    let mut selectors = group_selectors(selectors)?;
    rows.iter().map(|row| build(row, &mut selectors)).collect()
}

/// Records a renewed SVID as the agent's new serial, and the change.
pub(super) async fn set_new_serial(
    tx: &mut Tx,
    id: &SpiffeId,
    serial: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), DatastoreError> {
    let updated = tx
        .execute(
            Sql::new(
                "UPDATE attested_agents SET new_serial = ?, new_expires_at = ? \
                 WHERE spiffe_id = ?",
            )
            .bind(serial)
            .bind(expires_at)
            .bind(id.as_str()),
        )
        .await?;
    // MySQL counts only rows whose values changed; the agent may still exist.
    if updated == 0 && !exists(tx, id).await? {
        return Err(DatastoreError::AgentNotFound(id.clone()));
    }
    changes::record(tx, ChangeKind::Agent, id.as_str(), now).await
}

/// Moves the new serial to current when `serial` is it; inside the caller's write transaction.
pub(super) async fn promote_serial(
    tx: &mut Tx,
    id: &SpiffeId,
    serial: &str,
    now: i64,
) -> Result<(), DatastoreError> {
    let row = tx
        .fetch_optional(
            Sql::new("SELECT serial, new_serial FROM attested_agents WHERE spiffe_id = ?")
                .bind(id.as_str()),
        )
        .await?;
    let Some(row) = row else {
        return Err(DatastoreError::AgentNotFound(id.clone()));
    };
    let (current, new) = (text(&row, 0)?, opt_text(&row, 1)?);

    if new.as_deref() == Some(serial) {
        tx.execute(
            Sql::new(
                "UPDATE attested_agents SET serial = new_serial, expires_at = new_expires_at, \
                 new_serial = NULL, new_expires_at = 0 WHERE spiffe_id = ?",
            )
            .bind(id.as_str()),
        )
        .await?;
        changes::record(tx, ChangeKind::Agent, id.as_str(), now).await
    } else if current == serial {
        Ok(())
    } else {
        Err(DatastoreError::SerialMismatch {
            id: id.clone(),
            serial: serial.to_owned(),
        })
    }
}

/// Whether an agent with this ID is attested.
pub(super) async fn exists(tx: &mut Tx, id: &SpiffeId) -> Result<bool, DatastoreError> {
    Ok(tx
        .fetch_optional(
            Sql::new("SELECT spiffe_id FROM attested_agents WHERE spiffe_id = ?").bind(id.as_str()),
        )
        .await?
        .is_some())
}

/// Inserts the canonical form of `selectors` as agent `id`'s node selectors.
pub(super) async fn insert_selectors(
    tx: &mut Tx,
    id: &SpiffeId,
    selectors: &[Selector],
) -> Result<(), DatastoreError> {
    for s in canonical_selectors(selectors.to_vec()) {
        tx.execute(
            Sql::new("INSERT INTO agent_selectors (agent_id, type, value) VALUES (?, ?, ?)")
                .bind(id.as_str())
                .bind(s.kind())
                .bind(s.value()),
        )
        .await?;
    }
    Ok(())
}

/// Groups `agent_id, type, value` rows by agent.
pub(super) fn group_selectors(
    rows: Vec<AnyRow>,
) -> Result<HashMap<String, Vec<Selector>>, DatastoreError> {
    let mut grouped: HashMap<String, Vec<Selector>> = HashMap::new();
    for row in rows {
        let agent_id = text(&row, 0)?;
        let selector = Selector::new(&text(&row, 1)?, &text(&row, 2)?)
            .map_err(|e| DatastoreError::Corrupt(format!("selector of agent '{agent_id}': {e}")))?;
        grouped.entry(agent_id).or_default().push(selector);
    }
    Ok(grouped)
}

/// The agent of a row selected with [`AGENT_COLUMNS`], taking its selectors from `selectors`.
pub(super) fn build(
    row: &AnyRow,
    selectors: &mut HashMap<String, Vec<Selector>>,
) -> Result<AttestedAgent, DatastoreError> {
    let spiffe_id = text(row, 0)?;
    let id = SpiffeId::parse(&spiffe_id)
        .map_err(|e| DatastoreError::Corrupt(format!("agent id '{spiffe_id}': {e}")))?;
    Ok(AttestedAgent {
        selectors: canonical_selectors(selectors.remove(&spiffe_id).unwrap_or_default()),
        id,
        attestation_type: text(row, 1)?,
        serial: text(row, 2)?,
        expires_at: int(row, 3)?,
        new_serial: opt_text(row, 4)?,
        new_expires_at: int(row, 5)?,
        banned: flag(row, 6)?,
        can_reattest: flag(row, 7)?,
    })
}
