//! Federated bundles reach workloads: a bundle stored on the server for a foreign trust domain
//! is relayed by the agent to the workloads whose entries federate with it, and withdrawn
//! once no entry does.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lanyard_testkit::{Agent, Lanyard};
use lanyard_workload::{EndpointAddr, WorkloadClient};
use serde_json::Value;

use crate::common::*;
use crate::registration_common::*;

const PARTNER: &str = "partner.org";
const PARTNER_ID: &str = "spiffe://partner.org";

/// A self-signed CA certificate for the partner trust domain, made here rather than by
/// Lanyard: (PEM, DER).
fn partner_ca() -> (String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "partner.org test CA");
    params.subject_alt_names = vec![rcgen::SanType::URI(PARTNER_ID.try_into().unwrap())];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec())
}

/// `agent api fetch x509 --output json`, retried until `done` accepts the answer or 30 s pass.
fn fetch_until(l: &Lanyard, agent: &Agent, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = l.cli(&[
            "agent",
            "api",
            "fetch",
            "x509",
            "--socket",
            &agent.endpoint(),
            "--output",
            "json",
        ]);
        if out.success {
            let json: Value = serde_json::from_str(&out.stdout).unwrap();
            if done(&json) {
                return json;
            }
            last = out.stdout;
        } else {
            last = out.stderr;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} within 30 s; last answer:\n{last}\nagent logs:\n{}",
        agent.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workload_receives_the_federated_bundle_until_the_entry_stops_federating() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let (pem, der) = partner_ca();
    let pem_path = l.path("partner.pem");
    std::fs::write(&pem_path, &pem).unwrap();
    admin_ok(
        &l,
        &server,
        &[
            "bundle",
            "set",
            "--id",
            PARTNER,
            "--path",
            pem_path.to_str().unwrap(),
        ],
    );
    let workload = format!("spiffe://{TD}/federated");
    admin_json(
        &l,
        &server,
        &[
            "entry",
            "create",
            "--spiffe-id",
            &workload,
            "--parent-id",
            &agent_id(&token),
            "--selector",
            &format!("unix:uid:{}", uid()),
            "--federates-with",
            PARTNER,
        ],
    );

    let json = fetch_until(&l, &agent, "no partner.org bundle", |j| {
        j["bundles"].get(PARTNER_ID).is_some()
    });
    assert_eq!(json["svids"][0]["spiffe_id"], workload.as_str());
    assert!(
        json["bundles"].get(format!("spiffe://{TD}")).is_some(),
        "{json}"
    );
    let expected = lanyard_spiffe::x509::certs_to_pem(&[der.clone().into()]);
    assert_eq!(json["bundles"][PARTNER_ID], expected.as_str(), "{json}");

    // An independent client sees it too, as the partner's bundle with exactly that CA.
    let ctx = fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    let partner = spiffe::TrustDomain::new(PARTNER).unwrap();
    let bundle = ctx.bundle_set().get(&partner).expect("partner.org bundle");
    let authorities: Vec<&[u8]> = bundle.authorities().iter().map(|c| c.as_bytes()).collect();
    assert_eq!(authorities, [der.as_slice()]);

    // The bundle RPCs carry it too; with no JWT authorities it is an empty JWKS, not nothing.
    let addr = EndpointAddr::parse(&agent.endpoint()).unwrap();
    let mut client = WorkloadClient::connect(&addr).await.unwrap();
    let x509 = client.fetch_x509_bundles().await.unwrap();
    let partner_td = lanyard_spiffe::TrustDomain::new(PARTNER).unwrap();
    let held = x509.iter().find(|b| *b.trust_domain() == partner_td);
    assert_eq!(held.expect("partner.org X.509 bundle").to_der(), der);
    let jwt = client.fetch_jwt_bundles().await.unwrap();
    let held = jwt.get(&partner_td).expect("partner.org JWT bundle");
    assert!(held.is_empty());

    // An open stream is told when the bundle goes: the next message simply lacks it.
    let mut stream = Box::pin(client.watch_x509_context().await.unwrap());
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.bundle_for(&partner_td).is_some());
    admin_ok(
        &l,
        &server,
        &["bundle", "delete", "--id", PARTNER, "--mode", "dissociate"],
    );
    // Other updates (an SVID renewal) may come first; each still carries the full state.
    let withdrawn = async {
        loop {
            let update = stream.next().await.unwrap().unwrap();
            if update.bundle_for(&partner_td).is_none() {
                return update;
            }
        }
    };
    let update = tokio::time::timeout(Duration::from_secs(30), withdrawn)
        .await
        .expect("no stream update without partner.org after the bundle was dissociated");
    assert!(update.default_svid().is_some());

    let json = fetch_until(&l, &agent, "the partner.org bundle is still served", |j| {
        j["bundles"].get(PARTNER_ID).is_none()
    });
    assert_eq!(json["svids"][0]["spiffe_id"], workload.as_str(), "{json}");
    assert!(
        json["bundles"].get(format!("spiffe://{TD}")).is_some(),
        "{json}"
    );
}
