//! S4: the server's authorized-entries lookup, in process, on SPIRE's benchmark shape.
//!
//! The index is the server's own (`lanyard_server::bench_support`), built from entries and
//! agents made here: `agents` agents whose node selectors match two node aliases, each alias
//! with `alias_entries` workload entries under it, plus one agent with `direct_entries`
//! entries parented to it. Each call looks up one agent and builds its authorized set, as
//! `GetAuthorizedEntries` and the SVID handlers do.
//!
//! The floor is cloning a `Vec<Arc<Entry>>` of the same length: the least any lookup that
//! hands out its result as a fresh list can cost, with no entry copied.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_datastore::{AttestedAgent, Entry, EntryId};
use lanyard_server::bench_support::AuthorizedLookup;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

use crate::procs::TD;
use crate::report::Row;
use crate::{Plan, Size};

/// Node selectors every fleet agent carries; each alias requires one of them.
const ALIAS_SELECTORS: [&str; 2] = ["bench:pool:all", "bench:region:one"];

/// S4, two rows: a fleet agent through two aliases, and the one agent with many entries.
pub(crate) fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    eprintln!(
        "S4 building the index: {} agents, 2 aliases x {} entries, 1 agent x {} entries",
        plan.lookup_agents, plan.lookup_alias_entries, plan.lookup_direct_entries
    );
    let shape = Shape::build(plan)?;
    let budget = match plan.size {
        Size::Quick => Duration::from_millis(300),
        Size::Full => Duration::from_secs(2),
    };

    let fleet_expected = 2 + 2 * plan.lookup_alias_entries;
    let mut next = 0x9e37_79b9_u64;
    let fleet_us = time_per_call(budget, 100, || {
        // A different agent each call (xorshift), as a fleet's requests arrive.
        next ^= next << 13;
        next ^= next >> 7;
        next ^= next << 17;
        let agent = &shape.fleet[(next % shape.fleet.len() as u64) as usize];
        shape.lookup.authorized_count(agent)
    })?;
    anyhow::ensure!(
        fleet_us.returned == fleet_expected,
        "a fleet agent got {} entries, expected {fleet_expected} (2 aliases and their entries)",
        fleet_us.returned
    );
    let fleet_floor = clone_floor(budget, &shape.all[..fleet_expected]);

    let big_us = time_per_call(budget, 3, || shape.lookup.authorized_count(&shape.big))?;
    anyhow::ensure!(
        big_us.returned == plan.lookup_direct_entries,
        "the large agent got {} entries, expected {}",
        big_us.returned,
        plan.lookup_direct_entries
    );
    let big_floor = clone_floor(budget, &shape.all[..plan.lookup_direct_entries]);

    Ok(vec![
        row(
            format!(
                "authorized-entries lookup, 1 of {} agents via 2 node aliases x {} entries",
                plan.lookup_agents, plan.lookup_alias_entries
            ),
            fleet_us,
            fleet_floor,
        ),
        row(
            format!(
                "authorized-entries lookup, 1 agent with {} direct entries",
                plan.lookup_direct_entries
            ),
            big_us,
            big_floor,
        ),
    ])
}

fn row(what: String, measured: Timed, floor_us: f64) -> Row {
    let n = measured.returned;
    let per_entry_ns = measured.us * 1000.0 / n as f64;
    let budget_us = 1.0 + 0.010 * n as f64;
    Row {
        id: "S4",
        name: format!(
            "{what} ({n} returned, {per_entry_ns:.0} ns/entry, {} calls)",
            measured.calls
        ),
        measured: measured.us,
        unit: "us/call",
        floor: floor_us,
        floor_what: "clone of a Vec<Arc<Entry>> of the result's length",
        ratio: measured.us / floor_us,
        target: format!("<= 1 us + 10 ns/entry ({budget_us:.1} us here), zero deep copies"),
        spire: "Go benchmark exists, results unpublished",
    }
}

/// Mean time of one call and what it returned.
#[derive(Clone, Copy, Debug)]
struct Timed {
    us: f64,
    returned: usize,
    calls: u64,
}

/// Calls `lookup` for about `budget` (at least `min_calls` times) after one warm-up call.
fn time_per_call(
    budget: Duration,
    min_calls: u64,
    mut lookup: impl FnMut() -> Option<usize>,
) -> anyhow::Result<Timed> {
    let unknown = || anyhow::anyhow!("the index does not know a benchmark agent");
    let returned = lookup().ok_or_else(unknown)?;
    let started = Instant::now();
    let mut calls = 0u64;
    while calls < min_calls || started.elapsed() < budget {
        let n = black_box(lookup()).ok_or_else(unknown)?;
        anyhow::ensure!(n == returned, "lookups returned {n} and {returned} entries");
        calls += 1;
    }
    Ok(Timed {
        us: started.elapsed().as_secs_f64() * 1e6 / calls as f64,
        returned,
        calls,
    })
}

/// Mean time, in µs, to clone and drop `result` (reference counts only).
fn clone_floor(budget: Duration, result: &[Arc<Entry>]) -> f64 {
    let result = result.to_vec();
    let started = Instant::now();
    let mut calls = 0u64;
    while calls < 3 || started.elapsed() < budget {
        let copy = black_box(result.clone());
        drop(black_box(copy));
        calls += 1;
    }
    started.elapsed().as_secs_f64() * 1e6 / calls as f64
}

/// The data set and the server index built from it.
struct Shape {
    lookup: AuthorizedLookup,
    fleet: Vec<SpiffeId>,
    big: SpiffeId,
    /// Every entry, for the floor's vectors.
    all: Vec<Arc<Entry>>,
}

impl Shape {
    fn build(plan: &Plan) -> anyhow::Result<Self> {
        let td = TrustDomain::new(TD)?;
        let server = SpiffeId::from_segments(&td, &["spire", "server"])?;
        let node_selectors = ALIAS_SELECTORS
            .iter()
            .map(|s| Selector::parse(s))
            .collect::<Result<Vec<_>, _>>()?;

        let mut entries = Vec::new();
        for (a, selector) in node_selectors.iter().enumerate() {
            let alias = id(&td, &format!("/node/alias-{a}"))?;
            entries.push(entry(alias.clone(), server.clone(), selector.clone()));
            for j in 0..plan.lookup_alias_entries {
                let spiffe = id(&td, &format!("/workload/alias-{a}/{j}"))?;
                entries.push(entry(spiffe, alias.clone(), uid(j)?));
            }
        }
        let big = id(&td, "/spire/agent/bench/large")?;
        for k in 0..plan.lookup_direct_entries {
            let spiffe = id(&td, &format!("/workload/large/{k}"))?;
            entries.push(entry(spiffe, big.clone(), uid(k)?));
        }

        let mut agents = Vec::with_capacity(plan.lookup_agents + 1);
        let mut fleet = Vec::with_capacity(plan.lookup_agents);
        for i in 0..plan.lookup_agents {
            let agent_id = id(&td, &format!("/spire/agent/bench/{i}"))?;
            let mut selectors = node_selectors.clone();
            selectors.push(Selector::new("bench", &format!("node:{i}"))?);
            agents.push(agent(agent_id.clone(), selectors));
            fleet.push(agent_id);
        }
        // Its node selectors match no alias: it receives exactly its direct entries.
        agents.push(agent(
            big.clone(),
            vec![Selector::new("bench", "pool:large")?],
        ));

        let all = entries.iter().cloned().map(Arc::new).collect();
        let lookup = AuthorizedLookup::new(&td, entries, agents)?;
        Ok(Self {
            lookup,
            fleet,
            big,
            all,
        })
    }
}

fn id(td: &TrustDomain, path: &str) -> anyhow::Result<SpiffeId> {
    Ok(SpiffeId::from_path(td, path)?)
}

fn uid(n: usize) -> anyhow::Result<Selector> {
    Ok(Selector::new("unix", &format!("uid:{n}"))?)
}

fn entry(spiffe_id: SpiffeId, parent_id: SpiffeId, selector: Selector) -> Entry {
    Entry {
        id: EntryId::new(),
        spiffe_id,
        parent_id,
        selectors: vec![selector],
        x509_svid_ttl: 0,
        jwt_svid_ttl: 0,
        federates_with: Vec::new(),
        admin: false,
        downstream: false,
        expires_at: 0,
        dns_names: Vec::new(),
        store_svid: false,
        hint: String::new(),
        revision_number: 0,
        created_at: 0,
    }
}

fn agent(id: SpiffeId, mut selectors: Vec<Selector>) -> AttestedAgent {
    // The datastore hands agents out with their selectors sorted.
    selectors.sort();
    AttestedAgent {
        id,
        attestation_type: "join_token".into(),
        serial: "1".into(),
        expires_at: 0,
        new_serial: None,
        new_expires_at: 0,
        banned: false,
        can_reattest: false,
        selectors,
    }
}
