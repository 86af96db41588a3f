//! One rotation step, shared by X.509 authorities and JWT signing keys: both move through the
//! prepared, active and old slots on the timetable of [`crate::schedule`].

use std::time::SystemTime;

use crate::error::CaError;
use crate::journal::Status;
use crate::schedule::{activate_at, prepare_at, prune_at};

/// An authority that rotates through the three slots.
pub(crate) trait Rotating: Sized {
    /// What the old slot holds once the authority is replaced.
    type Retired: Published;

    /// The key id the first authority is stored under.
    const FIRST_KEY_ID: &'static str;

    /// When it becomes valid and when it expires.
    fn validity(&self) -> (SystemTime, SystemTime);

    /// The key id its key is stored under.
    fn key_id(&self) -> &str;

    /// The key id its successor is stored under.
    fn successor_key_id(&self) -> &'static str;

    /// Logs that the active authority expired before it was rotated.
    fn warn_expired();

    /// Retires `self` as `next` takes over, and logs the handover; `old` is what the old slot
    /// held until now.
    fn hand_over(self, next: &Self, old: Option<&Self::Retired>, now: SystemTime) -> Self::Retired;
}

/// What stays in the bundle for a while after it stops signing.
pub(crate) trait Published {
    /// Whether it still belongs in the bundle at `now`.
    fn published_at(&self, now: SystemTime) -> bool;
}

/// The three slots of one kind of authority.
pub(crate) struct SlotsMut<'d, A: Rotating> {
    pub(crate) prepared: &'d mut Option<A>,
    pub(crate) active: &'d mut Option<A>,
    pub(crate) old: &'d mut Option<A::Retired>,
}

/// Applies every step the schedule calls for at `now`, minting with `mint(key_id)` where a slot
/// needs a new authority. Returns whether anything changed.
///
/// # Errors
///
/// The first error of `mint`.
pub(crate) fn advance<A: Rotating>(
    slots: SlotsMut<'_, A>,
    now: SystemTime,
    mut mint: impl FnMut(&'static str) -> Result<A, CaError>,
) -> Result<bool, CaError> {
    let SlotsMut {
        prepared: prepared_slot,
        active: active_slot,
        old,
    } = slots;
    let mut changed = false;
    let expired = |a: &Option<A>| a.as_ref().is_some_and(|a| now >= a.validity().1);

    if old.as_ref().is_some_and(|o| !o.published_at(now)) {
        *old = None;
        changed = true;
    }
    if expired(prepared_slot) {
        *prepared_slot = None;
        changed = true;
    }
    if expired(active_slot) {
        A::warn_expired();
        *active_slot = None;
    }

    let active = match (active_slot.take(), prepared_slot.take()) {
        (Some(active), prepared) => {
            *prepared_slot = prepared;
            active
        }
        (None, Some(prepared)) => {
            changed = true;
            prepared
        }
        (None, None) => {
            changed = true;
            mint(A::FIRST_KEY_ID)?
        }
    };

    let (not_before, not_after) = active.validity();
    if prepared_slot.is_none() && now >= prepare_at(not_before, not_after) {
        *prepared_slot = Some(mint(active.successor_key_id())?);
        changed = true;
    }

    match prepared_slot.take() {
        Some(next) if now >= activate_at(not_before, not_after) => {
            *old = Some(active.hand_over(&next, old.as_ref(), now));
            *active_slot = Some(next);
            changed = true;
        }
        prepared => {
            *prepared_slot = prepared;
            *active_slot = Some(active);
        }
    }
    Ok(changed)
}

/// Whether a journal record of an authority valid from `not_before` to `not_after` is past
/// keeping at `now`: an old one once its grace period is over (see [`prune_at`]), the others
/// once they expire.
pub(crate) fn record_gone(
    status: Status,
    not_before: SystemTime,
    not_after: SystemTime,
    now: SystemTime,
) -> bool {
    let gone = match status {
        Status::Old => prune_at(not_before, not_after),
        _ => not_after,
    };
    now >= gone
}

/// Ends a restore from the journal: refuses an active and a prepared authority under one key
/// id (`what` names them in the message), and moves `keyless_active` to the old slot.
///
/// An active authority whose key is gone (a memory key manager after a restart) cannot sign,
/// but what it signed is still valid: it takes the old slot, so it stays in the bundle until it
/// expires. It is newer than any old one it displaces.
///
/// # Errors
///
/// [`CaError::CorruptJournal`] for the shared key id.
pub(crate) fn finish_restore<A: Rotating>(
    slots: SlotsMut<'_, A>,
    keyless_active: Option<A::Retired>,
    what: &str,
) -> Result<(), CaError> {
    let clash = matches!(
        (&*slots.active, &*slots.prepared),
        (Some(a), Some(p)) if a.key_id() == p.key_id()
    );
    if clash {
        return Err(CaError::CorruptJournal(format!(
            "active and prepared {what} share a key id"
        )));
    }
    if keyless_active.is_some() {
        *slots.old = keyless_active;
    }
    Ok(())
}
