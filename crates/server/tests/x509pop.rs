//! x509pop node attestation over the agent API, as a SPIRE agent speaks it: the certificate
//! chain as JSON, one signature challenge, then the agent SVID; re-attestation with the same
//! certificate, and the refusals an operator sees.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;
#[path = "support/tls.rs"]
mod tls;

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lanyard_ca::{KeyType, generate_key_pair, make_csr};
use lanyard_proto::spire::api::server::agent::v1::{
    AgentX509svidParams, AttestAgentRequest, BanAgentRequest, GetAgentRequest,
    agent_client::AgentClient, attest_agent_request, attest_agent_response,
};
use lanyard_proto::spire::api::types;
use lanyard_server::{RunningServer, X509popConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tonic::Code;

use support::{admin, config};
use tls::{AgentApi, id};

/// An operator's CA for agent certificates.
struct AgentCa {
    params: CertificateParams,
    key: KeyPair,
}

impl AgentCa {
    fn new(dir: &Path, file: &str) -> (Self, std::path::PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "agent CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let path = dir.join(file);
        std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
        (Self { params, key }, path)
    }

    /// A P-256 agent certificate with digitalSignature, and its key.
    fn agent_cert(&self, cn: &str) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
        (der, key)
    }
}

/// A server with x509pop trusting a fresh CA, and that CA.
async fn start(dir: &Path) -> (RunningServer, AgentApi, AgentCa) {
    let (ca, path) = AgentCa::new(dir, "agent-ca.pem");
    let mut config = config(dir);
    config.x509pop = Some(X509popConfig::load(vec![path], None, None).unwrap());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    (server, api, ca)
}

/// One x509pop AttestAgent exchange, answering the challenge with `signer` (the certificate's
/// key, or another one); the result, or the status that ended it.
async fn attest(
    api: &AgentApi,
    cert: &[u8],
    signer: &KeyPair,
) -> Result<attest_agent_response::Result, tonic::Status> {
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    let payload = serde_json::json!({ "certificates": [STANDARD.encode(cert)] }).to_string();
    let (requests, outgoing) = tokio::sync::mpsc::channel(2);
    requests
        .send(AttestAgentRequest {
            step: Some(attest_agent_request::Step::Params(
                attest_agent_request::Params {
                    data: Some(types::AttestationData {
                        r#type: "x509pop".into(),
                        payload: payload.into_bytes(),
                    }),
                    params: Some(AgentX509svidParams {
                        csr: make_csr(&key, None).unwrap(),
                    }),
                },
            )),
        })
        .await
        .unwrap();
    let mut responses = AgentClient::new(api.channel(None).await)
        .attest_agent(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    let Some(attest_agent_response::Step::Challenge(challenge)) =
        responses.message().await?.unwrap().step
    else {
        unreachable!("x509pop starts with a challenge");
    };
    let challenge: serde_json::Value = serde_json::from_slice(&challenge).unwrap();
    let nonce = STANDARD
        .decode(challenge["ecdsa_signature"]["nonce"].as_str().unwrap())
        .unwrap();
    let ours = [3u8; 32];
    let signer =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &signer.serialize_der())
            .unwrap();
    let sig = signer
        .sign(&SystemRandom::new(), &[nonce.as_slice(), &ours].concat())
        .unwrap();
    let (r, s) = sig.as_ref().split_at(32);
    let response = serde_json::json!({ "ecdsa_signature": {
        "nonce": STANDARD.encode(ours), "r": STANDARD.encode(r), "s": STANDARD.encode(s)
    }});
    requests
        .send(AttestAgentRequest {
            step: Some(attest_agent_request::Step::ChallengeResponse(
                response.to_string().into_bytes(),
            )),
        })
        .await
        .unwrap();
    let Some(attest_agent_response::Step::Result(result)) =
        responses.message().await?.unwrap().step
    else {
        unreachable!("after the challenge comes the result");
    };
    Ok(result)
}

fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    hex::encode(digest.as_ref())
}

#[tokio::test]
async fn attests_an_agent_that_proves_it_holds_the_certificate_key() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, ca) = start(dir.path()).await;
    let (cert, key) = ca.agent_cert("node-1");

    let result = attest(&api, &cert, &key).await.unwrap();
    assert!(result.reattestable);
    let path = format!("/spire/agent/x509pop/{}", fingerprint(&cert));
    assert_eq!(result.svid.unwrap().id.unwrap().path, path);

    let agent = AgentClient::new(api.admin.clone())
        .get_agent(GetAgentRequest {
            id: Some(id(&path)),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agent.attestation_type, "x509pop");
    assert!(agent.can_reattest);
    let selectors: Vec<String> = agent
        .selectors
        .iter()
        .map(|s| format!("{}:{}", s.r#type, s.value))
        .collect();
    assert!(
        selectors.contains(&"x509pop:subject:cn:node-1".to_owned()),
        "{selectors:?}"
    );
    assert!(
        selectors
            .iter()
            .any(|s| s.starts_with("x509pop:ca:fingerprint:")),
        "{selectors:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn reattests_with_the_same_certificate_until_banned() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, ca) = start(dir.path()).await;
    let (cert, key) = ca.agent_cert("node-1");
    let first = attest(&api, &cert, &key).await.unwrap();
    let again = attest(&api, &cert, &key).await.unwrap();
    let (first, again) = (first.svid.unwrap(), again.svid.unwrap());
    assert_eq!(first.id, again.id);
    assert_ne!(first.cert_chain, again.cert_chain);

    AgentClient::new(api.admin.clone())
        .ban_agent(BanAgentRequest { id: first.id })
        .await
        .unwrap();
    let refused = attest(&api, &cert, &key).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("is banned"), "{refused:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn refuses_a_certificate_of_another_ca_and_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, ca) = start(dir.path()).await;
    let (stranger, _) = AgentCa::new(dir.path(), "stranger.pem");
    let (cert, key) = stranger.agent_cert("intruder");
    let refused = attest(&api, &cert, &key).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused
            .message()
            .contains("does not chain to the x509pop CA bundle"),
        "{refused:?}"
    );

    let (cert, _) = ca.agent_cert("node-1");
    let other = KeyPair::generate().unwrap();
    let refused = attest(&api, &cert, &other).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("does not verify"), "{refused:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn x509pop_is_refused_where_it_is_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let (ca, _) = AgentCa::new(dir.path(), "ca.pem");
    let (cert, key) = ca.agent_cert("node-1");
    let refused = attest(&api, &cert, &key).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "attestation type \"x509pop\" is not enabled on this server: the enabled node attestors \
         are \"join_token\""
    );
    server.stop().await.unwrap();
}
