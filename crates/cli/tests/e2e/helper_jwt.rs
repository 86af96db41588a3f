//! `agent api helper` with spiffe-helper's JWT keys against a real server and agent: the
//! JWT-SVID files validate for their audiences, the JWT bundle file holds each trust domain's
//! JWKS, modes are spiffe-helper's defaults or the configured ones, and tokens are renewed
//! before they expire.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use lanyard_spiffe::{JwtBundleSet, JwtSvid, TrustDomain};
use lanyard_testkit::{Lanyard, wait_until};

use crate::common::*;
use crate::helper::{Running, SHORT_TTLS, ready};

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Reads the JWT bundle file: a JSON object from trust domain name to the base64 of its JWKS.
fn read_jwt_bundles(path: &Path) -> JwtBundleSet {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    doc.iter()
        .map(|(name, encoded)| {
            let jwks = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_str().expect("a base64 string"))
                .unwrap();
            lanyard_spiffe::bundle::parse_jwks(TrustDomain::new(name).unwrap(), &jwks)
                .unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&jwks)))
        })
        .collect()
}

/// `agent api validate jwt` accepts `token` for `audience`.
fn agent_validates(l: &Lanyard, endpoint: &str, audience: &str, token: &str) -> bool {
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
        endpoint,
    ])
    .success
}

fn write_config(l: &Lanyard, endpoint: &str, dir: &Path, extra: &str) -> String {
    let config = l.path("helper.hcl");
    std::fs::write(
        &config,
        format!(
            "agent_address = \"{endpoint}\"\ncert_dir = \"{}\"\n\
             jwt_svids = [\n  {{jwt_audience = \"db\", jwt_svid_file_name = \"db.token\"}},\n  \
             {{jwt_audience = \"web\", jwt_extra_audiences = [\"cdn\"], \
             jwt_svid_file_name = \"web.token\"}},\n]\n\
             jwt_bundle_file_name = \"jwt_bundle.json\"\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_once_writes_jwt_svids_that_validate_and_the_jwt_bundles() {
    let l = lanyard();
    let (_server, agent) = ready(&l, &[]).await;
    let endpoint = agent.endpoint();
    let dir = l.path("certs");
    let config = write_config(&l, &endpoint, &dir, "daemon_mode = false\n");

    let out = l.cli(&["agent", "api", "helper", "--config", &config]);
    assert!(
        out.success,
        "helper failed:\n{}\n{}",
        out.stdout, out.stderr
    );

    // spiffe-helper's default modes: tokens and the JWT bundle are for the owner only.
    for name in ["db.token", "web.token", "jwt_bundle.json"] {
        assert_eq!(mode_of(&dir.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode_of(&dir.join("svid.pem")), 0o644);
    assert_eq!(mode_of(&dir.join("svid_key.pem")), 0o600);

    let bundles = read_jwt_bundles(&dir.join("jwt_bundle.json"));
    assert_eq!(bundles.len(), 1);
    assert!(bundles.get(&TrustDomain::new(TD).unwrap()).is_some());

    let db = std::fs::read_to_string(dir.join("db.token")).unwrap();
    assert_eq!(db.trim_end(), db, "the file holds the token alone");
    let svid = JwtSvid::parse_and_validate(&db, &bundles, &["db"], SystemTime::now()).unwrap();
    assert_eq!(
        svid.spiffe_id().to_string(),
        format!("spiffe://{TD}/helped")
    );
    assert!(agent_validates(&l, &endpoint, "db", &db));
    assert!(
        !agent_validates(&l, &endpoint, "web", &db),
        "the db token is not for web"
    );

    let web = std::fs::read_to_string(dir.join("web.token")).unwrap();
    let svid = JwtSvid::parse_and_validate(&web, &bundles, &["cdn"], SystemTime::now()).unwrap();
    assert_eq!(svid.audience(), ["web", "cdn"]);
    assert!(agent_validates(&l, &endpoint, "web", &web));
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_daemon_renews_jwt_svids_before_they_expire_with_configured_modes() {
    let l = lanyard();
    let (_server, agent) = ready(&l, SHORT_TTLS).await;
    let endpoint = agent.endpoint();
    let dir = l.path("certs");
    let config = write_config(
        &l,
        &endpoint,
        &dir,
        "jwt_svid_file_mode = 0640\njwt_bundle_file_mode = 0644\n",
    );

    let _helper = Running::start(&["agent", "api", "helper", "--config", &config]);
    let token_path = dir.join("db.token");
    let bundle_path = dir.join("jwt_bundle.json");
    wait_until(Duration::from_secs(20), "the first JWT-SVID file", || {
        token_path.is_file() && bundle_path.is_file()
    });
    assert_eq!(mode_of(&token_path), 0o640);
    assert_eq!(mode_of(&bundle_path), 0o644);
    let bundles = read_jwt_bundles(&bundle_path);
    let first = std::fs::read_to_string(&token_path).unwrap();
    let first_exp = JwtSvid::parse_and_validate(&first, &bundles, &["db"], SystemTime::now())
        .unwrap()
        .expiry();

    // The JWT-SVID lives 4 s: the helper must replace it with a later one, and every token
    // read on the way must still be valid.
    wait_until(Duration::from_secs(20), "a renewed JWT-SVID", || {
        let token = std::fs::read_to_string(&token_path).unwrap();
        let svid = JwtSvid::parse_and_validate(&token, &bundles, &["db"], SystemTime::now())
            .unwrap_or_else(|e| panic!("the file holds an invalid token: {e}"));
        svid.expiry() > first_exp
    });
    assert_eq!(mode_of(&token_path), 0o640, "a renewed file keeps its mode");
}

#[test]
fn helper_refuses_a_jwt_svid_without_audience_naming_the_key() {
    let l = lanyard();
    let config = l.path("helper.hcl");
    std::fs::write(
        &config,
        "cert_dir = \"/tmp/never\"\njwt_svids = [{jwt_svid_file_name = \"a.token\"}]\n",
    )
    .unwrap();
    let out = l.cli(&[
        "agent",
        "api",
        "helper",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(!out.success);
    assert!(
        out.stderr.contains("jwt_svids[0]") && out.stderr.contains("jwt_audience"),
        "{}",
        out.stderr
    );
}
