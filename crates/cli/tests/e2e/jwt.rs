//! JWT-SVIDs through the Workload API of a real agent, signed by a real server.

use std::time::{Duration, SystemTime};

use lanyard_spiffe::JwtSvid;
use lanyard_workload::{EndpointAddr, WorkloadClient};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn fetched_jwt_svid_validates_locally_through_the_agent_and_with_the_spiffe_crate() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let workload = format!("spiffe://{TD}/billing/api");
    register(&l, &server, &workload, &agent_id(&token));
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    // The CLI fetches a token with its claims.
    let out = l.cli(&[
        "agent",
        "api",
        "fetch",
        "jwt",
        "--audience",
        "db",
        "--audience",
        "cache",
        "--socket",
        &agent.endpoint(),
        "--output",
        "json",
    ]);
    assert!(
        out.success,
        "fetch jwt failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let svid = &json["svids"][0];
    assert_eq!(svid["spiffe_id"], workload.as_str());
    assert_eq!(svid["claims"]["sub"], workload.as_str());
    let jwt = svid["svid"].as_str().unwrap().to_string();
    assert!(!out.stderr.contains(&jwt), "the token must not be logged");

    // Our library validates it against the JWT bundle the agent streams.
    let addr = EndpointAddr::parse(&agent.endpoint()).unwrap();
    let mut client = WorkloadClient::connect(&addr).await.unwrap();
    let bundles = client.fetch_jwt_bundles().await.unwrap();
    let parsed =
        JwtSvid::parse_and_validate(&jwt, &bundles, &["cache"], SystemTime::now()).unwrap();
    assert_eq!(parsed.spiffe_id().as_str(), workload);

    // The agent validates it for a right audience and refuses a wrong one or a tampered token.
    let validate = |audience: &str, token: &str| {
        l.cli(&[
            "agent",
            "api",
            "validate",
            "jwt",
            "--audience",
            audience,
            "--svid",
            token,
            "--socket",
            &agent.endpoint(),
            "--output",
            "json",
        ])
    };
    let ok = validate("db", &jwt);
    assert!(ok.success, "validate failed:\n{}\n{}", ok.stdout, ok.stderr);
    let json: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(json["spiffe_id"], workload.as_str());
    assert_eq!(json["claims"]["aud"], serde_json::json!(["db", "cache"]));

    let wrong = validate("payments", &jwt);
    assert!(!wrong.success, "a wrong audience was accepted");
    assert!(wrong.stderr.contains("InvalidArgument"), "{}", wrong.stderr);

    let (head, signature) = jwt.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{head}.{flipped}{}", &signature[1..]);
    let bad = validate("db", &tampered);
    assert!(!bad.success, "a tampered token was accepted");

    // Asking again reuses the cached token.
    let again = client
        .fetch_jwt_svids(&["cache".into(), "db".into()], None)
        .await
        .unwrap();
    assert_eq!(again[0].token, jwt);

    // An identity the caller does not have is refused.
    let out = l.cli(&[
        "agent",
        "api",
        "fetch",
        "jwt",
        "--audience",
        "db",
        "--spiffe-id",
        &format!("spiffe://{TD}/someone/else"),
        "--socket",
        &agent.endpoint(),
    ]);
    assert!(!out.success);
    assert!(out.stderr.contains("PermissionDenied"), "{}", out.stderr);

    // The independent `spiffe` crate fetches and validates one too.
    let spiffe_client = spiffe::WorkloadApiClient::connect_to(agent.endpoint())
        .await
        .unwrap();
    let theirs = spiffe_client
        .fetch_jwt_svid(["spiffe-crate"], None)
        .await
        .unwrap();
    assert_eq!(theirs.spiffe_id().to_string(), workload);
    let checked = spiffe_client
        .validate_jwt_token("spiffe-crate", theirs.token())
        .await
        .unwrap();
    assert_eq!(checked.audience(), ["spiffe-crate"]);
    let their_bundles = spiffe_client.fetch_jwt_bundles().await.unwrap();
    let td = spiffe::TrustDomain::new(TD).unwrap();
    assert!(their_bundles.get(&td).is_some());
}
