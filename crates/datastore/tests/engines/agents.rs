//! Attested agents: creation, serial rotation, queries, eviction, banning, re-attestation.

use lanyard_datastore::{
    AgentFilter, AttestedAgent, ChangeKind, Datastore, DatastoreError, SelectorMatch,
};

use crate::engine_tests;
use crate::support::{Ctx, id, sels};

engine_tests!(
    creates_gets_and_lists_agents,
    rejects_a_second_agent_with_the_same_id,
    renewal_keeps_the_old_serial_until_the_new_one_is_used,
    serial_updates_of_unknown_agents_fail,
    queries_agents_by_filter_in_pages,
    evicting_an_agent_removes_it_and_its_selectors,
    banning_clears_the_serials_and_blocks_reattestation,
    reattesting_replaces_the_attestation,
    agent_snapshot_carries_the_feed_position,
);

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

async fn creates_gets_and_lists_agents(ctx: Ctx) {
    let store = ctx.store;
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

async fn rejects_a_second_agent_with_the_same_id(ctx: Ctx) {
    let store = ctx.store;
    store.create_agent(&agent("a")).await.unwrap();
    let err = store.create_agent(&agent("a")).await.unwrap_err();
    assert!(matches!(err, DatastoreError::AgentAlreadyExists(ref x) if *x == agent("a").id));
}

async fn renewal_keeps_the_old_serial_until_the_new_one_is_used(ctx: Ctx) {
    let store = ctx.store;
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
    // Recording the same renewal again is no error (MySQL reports no changed row).
    store
        .set_agent_new_serial(&a.id, "2002", 1_700_007_200)
        .await
        .unwrap();

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
    assert!(matches!(err, DatastoreError::SerialMismatch { ref serial, .. } if serial == "1001"));
}

async fn serial_updates_of_unknown_agents_fail(ctx: Ctx) {
    let store = ctx.store;
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

async fn queries_agents_by_filter_in_pages(ctx: Ctx) {
    let store = ctx.store;
    for i in 0..5 {
        let mut a = agent(&format!("n{i}"));
        a.expires_at = 1_000 + i;
        a.can_reattest = i % 2 == 0;
        if i >= 3 {
            a.attestation_type = "x509pop".into();
            a.selectors = sels(&["x509pop:ca:1"]);
        }
        store.create_agent(&a).await.unwrap();
    }
    store.set_agent_banned(&agent("n1").id).await.unwrap();

    let ids = |agents: Vec<AttestedAgent>| -> Vec<String> {
        agents
            .iter()
            .map(|a| a.id.path().rsplit('/').next().unwrap().to_owned())
            .collect()
    };
    let query = |f: AgentFilter| {
        let store = store.clone();
        async move {
            let (agents, next) = store.query_agents(&f, 0, None).await.unwrap();
            assert_eq!(next, None);
            assert_eq!(store.count_agents(&f).await.unwrap(), agents.len() as u64);
            ids(agents)
        }
    };
    assert_eq!(query(AgentFilter::default()).await.len(), 5);
    let f = AgentFilter {
        attestation_type: Some("x509pop".into()),
        ..AgentFilter::default()
    };
    assert_eq!(query(f).await, ["n3", "n4"]);
    let f = AgentFilter {
        banned: Some(true),
        ..AgentFilter::default()
    };
    assert_eq!(query(f).await, ["n1"]);
    let f = AgentFilter {
        can_reattest: Some(true),
        banned: Some(false),
        ..AgentFilter::default()
    };
    assert_eq!(query(f).await, ["n0", "n2", "n4"]);
    let f = AgentFilter {
        expires_before: Some(1_002),
        ..AgentFilter::default()
    };
    assert_eq!(query(f).await, ["n0", "n1"]);
    for (mode, expected) in [
        (SelectorMatch::Exact, vec!["n0", "n1", "n2"]),
        (SelectorMatch::Subset, vec!["n0", "n1", "n2"]),
        (SelectorMatch::Superset, vec!["n0", "n1", "n2"]),
        (SelectorMatch::Any, vec!["n0", "n1", "n2", "n3", "n4"]),
    ] {
        let given = if mode == SelectorMatch::Any {
            sels(&["agent:b", "x509pop:ca:1"])
        } else {
            sels(&["agent:b", "join_token:x"])
        };
        let f = AgentFilter {
            selectors: Some((given, mode)),
            ..AgentFilter::default()
        };
        assert_eq!(query(f).await, expected, "{mode:?}");
    }

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = store
            .query_agents(&AgentFilter::default(), 2, token.as_deref())
            .await
            .unwrap();
        seen.push(ids(page));
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, [vec!["n0", "n1"], vec!["n2", "n3"], vec!["n4"]]);
    let err = store
        .query_agents(&AgentFilter::default(), 2, Some("zz"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("query_agents"), "{err}");
}

async fn evicting_an_agent_removes_it_and_its_selectors(ctx: Ctx) {
    let store = ctx.store;
    let a = agent("a");
    store.create_agent(&a).await.unwrap();
    let evicted = store.delete_agent(&a.id).await.unwrap().unwrap();
    assert_eq!(evicted.id, a.id);
    assert_eq!(store.get_agent(&a.id).await.unwrap(), None);
    assert_eq!(store.delete_agent(&a.id).await.unwrap(), None);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_selectors")
        .fetch_one(&ctx.raw)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // Evicted, it may attest afresh.
    store.create_agent(&a).await.unwrap();
}

async fn banning_clears_the_serials_and_blocks_reattestation(ctx: Ctx) {
    let store = ctx.store;
    let a = agent("a");
    store.create_agent(&a).await.unwrap();
    store.set_agent_new_serial(&a.id, "2002", 5).await.unwrap();

    let banned = store.set_agent_banned(&a.id).await.unwrap();
    assert!(banned.banned);
    assert_eq!(
        (banned.serial.as_str(), banned.new_serial.as_deref()),
        ("", None)
    );
    assert_eq!(store.get_agent(&a.id).await.unwrap().unwrap(), banned);
    // Neither the old nor the renewed certificate's serial is accepted any more.
    for serial in ["1001", "2002"] {
        assert!(matches!(
            store.promote_agent_serial(&a.id, serial).await,
            Err(DatastoreError::SerialMismatch { .. })
        ));
    }
    let err = store.reattest_agent(&a).await.unwrap_err();
    assert!(matches!(err, DatastoreError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains(a.id.as_str()), "{err}");

    let ghost = id("spiffe://example.org/spire/agent/ghost");
    assert!(matches!(
        store.set_agent_banned(&ghost).await,
        Err(DatastoreError::AgentNotFound(_))
    ));
}

async fn reattesting_replaces_the_attestation(ctx: Ctx) {
    let store = ctx.store;
    let a = agent("a");
    store.create_agent(&a).await.unwrap();
    store.set_agent_new_serial(&a.id, "2002", 5).await.unwrap();
    let fresh = AttestedAgent {
        attestation_type: "x509pop".into(),
        serial: "3003".into(),
        expires_at: 9_000,
        can_reattest: true,
        selectors: sels(&["x509pop:subject:cn:n"]),
        ..a.clone()
    };
    store.reattest_agent(&fresh).await.unwrap();
    assert_eq!(store.get_agent(&a.id).await.unwrap(), Some(fresh.clone()));

    let ghost = AttestedAgent {
        id: id("spiffe://example.org/spire/agent/ghost"),
        ..fresh
    };
    assert!(matches!(
        store.reattest_agent(&ghost).await,
        Err(DatastoreError::AgentNotFound(_))
    ));
}

async fn agent_snapshot_carries_the_feed_position(ctx: Ctx) {
    let store = ctx.store;
    let a = agent("a");
    store.create_agent(&a).await.unwrap();
    let (agents, position) = store.agents_snapshot().await.unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(position, store.latest_change().await.unwrap());
    store.promote_agent_serial(&a.id, "1001").await.unwrap();
    store.set_agent_new_serial(&a.id, "2", 7).await.unwrap();
    let after = store.changes_since(position, 0).await.unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].kind, after[0].key.as_str()),
        (ChangeKind::Agent, a.id.as_str())
    );
}
