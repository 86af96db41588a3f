//! Background upkeep: CA rotation with bundle publication, and renewal of the server's own
//! SVID at half life or as soon as a new CA becomes active.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lanyard_telemetry::SvidKind;

use crate::state::ServerState;

/// Runs until `shutdown`.
pub(crate) async fn run(state: Arc<ServerState>, shutdown: impl Future<Output = ()> + Send) {
    let tick = tick_interval(&state);
    tokio::pin!(shutdown);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(tick) => {}
        }
        match upkeep(&state).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "CA upkeep failed; retrying");
                } else {
                    tracing::debug!(error = %e, failures, "CA upkeep still failing");
                }
            }
        }
    }
}

async fn upkeep(state: &ServerState) -> Result<(), crate::ServerError> {
    let prepared_before = state.ca.prepared().map(|a| a.cert().clone());
    let active_before = state.ca.active().cert().clone();
    if state.ca.rotate().await? {
        // A JWT key change alone leaves the certificates alone; the sequence must rise anyway.
        state.publish_authority_change().await?;
        tracing::info!("Trust bundle changed after CA rotation");
    }
    let prepared_after = state.ca.prepared().map(|a| a.cert().clone());
    if prepared_after.is_some() && prepared_after != prepared_before {
        state.metrics.ca_prepared();
    }
    if *state.ca.active().cert() != active_before {
        state.metrics.ca_activated();
    }
    let current = state.server_svid.current();
    let now = state.clock.now();
    let lifetime = current
        .not_after
        .duration_since(current.issued_at)
        .unwrap_or_default();
    let half_life = current.issued_at + lifetime / 2;
    let issuer_changed = current.issuer != *state.ca.active().cert();
    if now >= half_life || issuer_changed {
        state
            .server_svid
            .renew(&state.ca, &state.server_id, &state.config, now)?;
        state.metrics.svid_signed(SvidKind::X509Server);
    }
    Ok(())
}

/// Often enough to hit every rotation point of short test lifetimes, at most every 10 s
/// (SPIRE's rotator tick).
fn tick_interval(state: &ServerState) -> Duration {
    let shortest = state.config.ca_ttl.min(state.config.default_x509_svid_ttl);
    (shortest / 20).clamp(Duration::from_millis(100), Duration::from_secs(10))
}
