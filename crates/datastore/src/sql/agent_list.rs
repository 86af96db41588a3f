//! Agents by filter (a page at a time, or counted) and the operator actions on one agent:
//! evict, ban, re-attest.

use super::agents::{AGENT_COLUMNS, build, exists, get, group_selectors, insert_selectors};
use super::changes;
use super::entry_filter::ChildSet;
use super::exec::{Sql, Tx, text};
use super::page;
use crate::change::ChangeKind;
use crate::error::DatastoreError;
use crate::model::{AgentFilter, AttestedAgent};
use lanyard_spiffe::SpiffeId;

/// One page of agents matching `filter`, after agent `after` in ID order.
pub(super) async fn query(
    tx: &mut Tx,
    filter: &AgentFilter,
    page_size: u32,
    after: Option<&str>,
) -> Result<(Vec<AttestedAgent>, Option<String>), DatastoreError> {
    let mut q = Sql::new(AGENT_COLUMNS);
    q.push(" WHERE 1 = 1");
    push_filter(&mut q, filter);
    if let Some(after) = after {
        q.push(" AND a.spiffe_id > ").push_bind(after);
    }
    q.push(" ORDER BY a.spiffe_id");
    if let Some(limit) = page::limit(page_size) {
        q.push(" LIMIT ").push_bind(limit);
    }
    let rows = tx.fetch_all(q).await?;
    let (rows, next) = page::finish(rows, page_size, |row| text(row, 0).unwrap_or_default());

    let mut selectors =
        Sql::new("SELECT agent_id, type, value FROM agent_selectors WHERE agent_id IN ");
    let ids = rows
        .iter()
        .map(|row| text(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    selectors.push_list(ids);
    let mut selectors = group_selectors(tx.fetch_all(selectors).await?)?;
    let agents = rows
        .iter()
        .map(|row| build(row, &mut selectors))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((agents, next))
}

/// How many agents match `filter`.
pub(super) async fn count(tx: &mut Tx, filter: &AgentFilter) -> Result<u64, DatastoreError> {
    let mut q = Sql::new("SELECT COUNT(*) FROM attested_agents a WHERE 1 = 1");
    push_filter(&mut q, filter);
    Ok(u64::try_from(tx.fetch_int(q).await?).unwrap_or(0))
}

/// Deletes an agent and its selectors, records the change and returns the agent.
pub(super) async fn delete(
    tx: &mut Tx,
    id: &SpiffeId,
    now: i64,
) -> Result<Option<AttestedAgent>, DatastoreError> {
    let Some(agent) = get(tx, id).await? else {
        return Ok(None);
    };
    tx.execute(Sql::new("DELETE FROM agent_selectors WHERE agent_id = ?").bind(id.as_str()))
        .await?;
    tx.execute(Sql::new("DELETE FROM attested_agents WHERE spiffe_id = ?").bind(id.as_str()))
        .await?;
    changes::record(tx, ChangeKind::Agent, id.as_str(), now).await?;
    Ok(Some(agent))
}

/// Bans an agent: it may neither renew nor re-attest. Its serials are cleared, and an empty
/// serial matches no presented certificate.
pub(super) async fn ban(
    tx: &mut Tx,
    id: &SpiffeId,
    now: i64,
) -> Result<AttestedAgent, DatastoreError> {
    if !exists(tx, id).await? {
        return Err(DatastoreError::AgentNotFound(id.clone()));
    }
    tx.execute(
        Sql::new(
            "UPDATE attested_agents SET banned = 1, serial = '', new_serial = NULL, \
             new_expires_at = 0 WHERE spiffe_id = ?",
        )
        .bind(id.as_str()),
    )
    .await?;
    changes::record(tx, ChangeKind::Agent, id.as_str(), now).await?;
    get(tx, id)
        .await?
        .ok_or_else(|| DatastoreError::Corrupt(format!("agent '{id}' vanished mid-transaction")))
}

/// Replaces an attested agent's attestation with a fresh one (type, serial, expiry,
/// re-attestation flag, selectors) and clears any pending new serial.
pub(super) async fn reattest(
    tx: &mut Tx,
    agent: &AttestedAgent,
    now: i64,
) -> Result<(), DatastoreError> {
    let Some(stored) = get(tx, &agent.id).await? else {
        return Err(DatastoreError::AgentNotFound(agent.id.clone()));
    };
    if stored.banned {
        return Err(DatastoreError::InvalidInput(format!(
            "agent '{}' is banned: a banned agent cannot re-attest until an operator deletes it",
            agent.id
        )));
    }
    tx.execute(
        Sql::new(
            "UPDATE attested_agents SET attestation_type = ?, serial = ?, expires_at = ?, \
             can_reattest = ?, new_serial = NULL, new_expires_at = 0 WHERE spiffe_id = ?",
        )
        .bind(&agent.attestation_type)
        .bind(&agent.serial)
        .bind(agent.expires_at)
        .bind(agent.can_reattest)
        .bind(agent.id.as_str()),
    )
    .await?;
    tx.execute(Sql::new("DELETE FROM agent_selectors WHERE agent_id = ?").bind(agent.id.as_str()))
        .await?;
    insert_selectors(tx, &agent.id, &agent.selectors).await?;
    changes::record(tx, ChangeKind::Agent, agent.id.as_str(), now).await
}

/// Appends the agent filter's conditions (on `attested_agents a`).
fn push_filter(q: &mut Sql, filter: &AgentFilter) {
    if let Some(kind) = &filter.attestation_type {
        q.push(" AND a.attestation_type = ")
            .push_bind(kind.as_str());
    }
    if let Some(banned) = filter.banned {
        q.push(" AND a.banned = ").push_bind(banned);
    }
    if let Some(can_reattest) = filter.can_reattest {
        q.push(" AND a.can_reattest = ").push_bind(can_reattest);
    }
    if let Some(before) = filter.expires_before {
        q.push(" AND a.expires_at < ").push_bind(before);
    }
    if let Some((selectors, mode)) = &filter.selectors {
        ChildSet::agent_selectors(selectors).push_match(q, *mode);
    }
}
