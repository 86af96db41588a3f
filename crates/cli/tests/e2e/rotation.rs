//! Renewal from the start: with every lifetime shortened to seconds, an open Workload API
//! stream keeps delivering fresh, verifiable SVIDs across several lifetimes (and across a
//! CA rotation).

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;

use crate::common::*;

const SVID_TTL: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread")]
async fn open_stream_is_served_across_three_svid_lifetimes() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(
        &l,
        &[
            "--ca-ttl",
            "24s",
            "--default-x509-svid-ttl",
            "4s",
            "--agent-ttl",
            "4s",
            "--default-jwt-svid-ttl",
            "4s",
        ],
    );
    register(
        &l,
        &server,
        &format!("spiffe://{TD}/rotating"),
        &agent_id(&token),
    );
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    let client = spiffe::WorkloadApiClient::connect_to(agent.endpoint())
        .await
        .unwrap();
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let td = lanyard_spiffe::TrustDomain::new(TD).unwrap();
    let started = Instant::now();
    let mut serials = BTreeSet::new();
    let mut roots = BTreeSet::new();

    while started.elapsed() < SVID_TTL * 3 + Duration::from_secs(1) {
        let next = tokio::time::timeout(SVID_TTL, stream.next()).await;
        let ctx = match next {
            Ok(Some(Ok(ctx))) => ctx,
            other => panic!(
                "stream did not deliver a renewed SVID in time: {:?}\nagent:\n{}\nserver:\n{}",
                other.map(|o| o.map(|r| r.map(|_| ()))),
                agent.logs(),
                server.logs()
            ),
        };
        let svid = ctx.default_svid().unwrap();
        assert_key_matches(svid);
        let bundle = ctx
            .bundle_set()
            .get(&spiffe::TrustDomain::new(TD).unwrap())
            .unwrap();
        roots.extend(bundle.authorities().iter().map(|c| c.as_bytes().to_vec()));

        // Each new SVID verifies, now, against the bundle that arrived with it.
        let chain: Vec<_> = svid
            .cert_chain()
            .iter()
            .map(|c| rustls::pki_types::CertificateDer::from(c.as_bytes().to_vec()))
            .collect();
        let authorities = bundle
            .authorities()
            .iter()
            .map(|c| rustls::pki_types::CertificateDer::from(c.as_bytes().to_vec()))
            .collect();
        let ours = lanyard_spiffe::X509Bundle::new(td.clone(), authorities);
        lanyard_spiffe::x509::verify_chain(&chain, &ours, SystemTime::now())
            .unwrap_or_else(|e| panic!("renewed SVID does not verify: {e}"));
        let (_, leaf) = x509_parser::parse_x509_certificate(svid.leaf().as_bytes()).unwrap();
        serials.insert(leaf.raw_serial().to_vec());
    }

    // Renewal at half life gives about two SVIDs per lifetime.
    assert!(
        serials.len() >= 4,
        "only {} distinct SVIDs in three lifetimes",
        serials.len()
    );
    assert!(
        roots.len() >= 2,
        "the CA (24s) should have been rotated into the bundle"
    );
    assert!(!agent.exited(), "agent died:\n{}", agent.logs());
}
