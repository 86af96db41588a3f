//! What the X.509 RPCs deliver, parsed strictly: a [`X509Context`] from `FetchX509SVID` and
//! bundles from their map entries.

use std::collections::BTreeSet;

use lanyard_proto::workload::X509svidResponse;
use lanyard_spiffe::{TrustDomain, X509Bundle, X509Svid};

use super::ClientError;

/// Everything `FetchX509SVID` delivered in one message.
#[derive(Clone, Debug)]
pub struct X509Context {
    /// The SVIDs; the first is the default identity.
    pub svids: Vec<X509Svid>,
    /// Bundles: the default SVID's own trust domain first, then federated ones.
    pub bundles: Vec<X509Bundle>,
}

impl X509Context {
    /// The default identity: the first SVID (Workload API §8). A context always holds one.
    pub fn default_svid(&self) -> Option<&X509Svid> {
        self.svids.first()
    }

    /// The bundle of trust domain `td`, to verify peers from that trust domain with.
    pub fn bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.bundles.iter().find(|b| b.trust_domain() == td)
    }
}

/// A bundle from a map entry; keys are `spiffe://td` as servers send them, or a bare `td`
/// as go-spiffe also accepts.
pub(super) fn bundle(td: &str, der: &[u8]) -> Result<X509Bundle, ClientError> {
    let td = TrustDomain::from_name_or_id(td)
        .map_err(|e| ClientError::Invalid(format!("bundle key {td:?}: {e}")))?;
    X509Bundle::from_der(td.clone(), der)
        .map_err(|e| ClientError::Invalid(format!("bundle of {td}: {e}")))
}

/// Parses one `FetchX509SVID` message (Workload API §5.2). Every SVID must parse and match
/// its `spiffe_id`; of SVIDs with the same non-empty hint only the first is kept (§4). The
/// own trust domain's bundle comes from the SVIDs, federated ones follow.
pub(super) fn parse_context(message: X509svidResponse) -> Result<X509Context, ClientError> {
    if message.svids.is_empty() {
        return Err(ClientError::Invalid("the response holds no SVID".into()));
    }
    let mut svids = Vec::with_capacity(message.svids.len());
    let mut bundles: Vec<X509Bundle> = Vec::new();
    let mut hints = BTreeSet::new();
    for item in &message.svids {
        if !item.hint.is_empty() && !hints.insert(item.hint.as_str()) {
            continue;
        }
        let svid = X509Svid::parse_der(&item.x509_svid, &item.x509_svid_key)
            .map_err(|e| ClientError::Invalid(format!("SVID {:?}: {e}", item.spiffe_id)))?;
        if svid.spiffe_id().as_str() != item.spiffe_id {
            return Err(ClientError::Invalid(format!(
                "spiffe_id {:?} differs from the certificate's {}",
                item.spiffe_id,
                svid.spiffe_id()
            )));
        }
        let td = svid.spiffe_id().trust_domain();
        if !bundles.iter().any(|b| *b.trust_domain() == td) {
            bundles.push(bundle(&td.id_string(), &item.bundle)?);
        }
        svids.push(svid);
    }
    let mut federated = message
        .federated_bundles
        .iter()
        .map(|(td, der)| bundle(td, der))
        .collect::<Result<Vec<_>, _>>()?;
    federated.sort_by(|a, b| a.trust_domain().cmp(b.trust_domain()));
    for f in federated {
        if !bundles.iter().any(|b| b.trust_domain() == f.trust_domain()) {
            bundles.push(f);
        }
    }
    Ok(X509Context { svids, bundles })
}

#[cfg(test)]
mod tests {

    use lanyard_proto::workload::X509svid;

    use super::*;
    use crate::X509SvidItem;
    use crate::testca::TestCa;

    fn wire(item: &X509SvidItem) -> X509svid {
        X509svid {
            spiffe_id: item.spiffe_id.to_string(),
            x509_svid: item.chain_der.clone(),
            x509_svid_key: item.key_pkcs8.clone(),
            bundle: item.bundle_der.clone(),
            hint: item.hint.clone(),
        }
    }

    fn response(svids: Vec<X509svid>, federated: &[(&str, Vec<u8>)]) -> X509svidResponse {
        X509svidResponse {
            svids,
            crl: Vec::new(),
            federated_bundles: federated
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn trust_domains(ctx: &X509Context) -> Vec<String> {
        ctx.bundles
            .iter()
            .map(|b| b.trust_domain().to_string())
            .collect()
    }

    #[test]
    fn own_bundle_comes_first_and_federated_keys_may_be_bare_names() {
        let own = TestCa::new("example.org");
        let a = TestCa::new("a.org");
        let b = TestCa::new("b.org");
        let message = response(
            vec![wire(&own.svid("/web", ""))],
            &[
                ("spiffe://b.org", b.bundle_der()),
                ("a.org", a.bundle_der()),
            ],
        );
        let ctx = parse_context(message).unwrap();
        assert_eq!(
            ctx.default_svid().unwrap().spiffe_id().as_str(),
            "spiffe://example.org/web"
        );
        assert_eq!(trust_domains(&ctx), ["example.org", "a.org", "b.org"]);
        let a_td = TrustDomain::new("a.org").unwrap();
        assert_eq!(ctx.bundle_for(&a_td).unwrap().authorities().len(), 1);
    }

    #[test]
    fn federated_entry_cannot_replace_the_own_bundle() {
        let own = TestCa::new("example.org");
        let impostor = TestCa::new("example.org");
        let message = response(
            vec![wire(&own.svid("/web", ""))],
            &[("spiffe://example.org", impostor.bundle_der())],
        );
        let ctx = parse_context(message).unwrap();
        assert_eq!(ctx.bundles.len(), 1);
        assert_eq!(ctx.bundles[0].to_der(), own.bundle_der());
    }

    #[test]
    fn keeps_only_the_first_svid_of_a_repeated_hint() {
        let ca = TestCa::new("example.org");
        let message = response(
            vec![
                wire(&ca.svid("/one", "internal")),
                wire(&ca.svid("/two", "internal")),
                wire(&ca.svid("/three", "")),
            ],
            &[],
        );
        let ids: Vec<_> = parse_context(message)
            .unwrap()
            .svids
            .iter()
            .map(|s| s.spiffe_id().to_string())
            .collect();
        assert_eq!(
            ids,
            ["spiffe://example.org/one", "spiffe://example.org/three"]
        );
    }

    #[test]
    fn rejects_a_response_without_svids() {
        let err = parse_context(response(vec![], &[])).unwrap_err();
        assert!(err.to_string().contains("no SVID"), "{err}");
    }

    #[test]
    fn rejects_a_spiffe_id_field_that_differs_from_the_certificate() {
        let ca = TestCa::new("example.org");
        let mut svid = wire(&ca.svid("/real", ""));
        svid.spiffe_id = "spiffe://example.org/claimed".into();
        let err = parse_context(response(vec![svid], &[])).unwrap_err();
        assert!(err.to_string().contains("differs"), "{err}");
    }

    #[test]
    fn rejects_an_invalid_bundle_key() {
        let ca = TestCa::new("example.org");
        let message = response(
            vec![wire(&ca.svid("/web", ""))],
            &[("spiffe://Bad.org", ca.bundle_der())],
        );
        let err = parse_context(message).unwrap_err();
        assert!(err.to_string().contains("spiffe://Bad.org"), "{err}");
    }
}
