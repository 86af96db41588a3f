//! Trust bundles (own and federated) and federation relationships, as stored.

use lanyard_spiffe::{SpiffeId, TrustDomain};

/// A trust bundle as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBundle {
    /// Whose bundle this is.
    pub trust_domain: TrustDomain,
    /// The X.509 authorities, each a DER certificate.
    pub x509_authorities: Vec<Vec<u8>>,
    /// The JWT authorities.
    pub jwt_authorities: Vec<StoredJwtKey>,
    /// DER of the X.509 authorities marked tainted; each is also in `x509_authorities`.
    pub tainted_x509: Vec<Vec<u8>>,
    /// Starts at 1 and grows by one each time the bundle's content changes.
    pub sequence: u64,
    /// Suggested refresh interval for federated consumers in seconds; 0 means unset.
    pub refresh_hint: i64,
}

impl StoredBundle {
    /// A bundle of `trust_domain` with these X.509 authorities, no JWT authorities, nothing
    /// tainted, sequence 1 and no refresh hint.
    pub fn new(trust_domain: TrustDomain, x509_authorities: Vec<Vec<u8>>) -> Self {
        StoredBundle {
            trust_domain,
            x509_authorities,
            jwt_authorities: Vec::new(),
            tainted_x509: Vec::new(),
            sequence: 1,
            refresh_hint: 0,
        }
    }
}

/// A JWT authority of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredJwtKey {
    /// The key ID (`kid`), unique within the bundle.
    pub key_id: String,
    /// The public key, PKIX (SubjectPublicKeyInfo) DER.
    pub public_key: Vec<u8>,
    /// When the key stops being valid (unix seconds); 0 means no expiry.
    pub expires_at: i64,
    /// Whether the key is marked tainted (being rotated out after a compromise).
    pub tainted: bool,
}

/// What [`Datastore::delete_bundle`](crate::Datastore::delete_bundle) does with entries that
/// federate with the deleted trust domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BundleDeleteMode {
    /// Refuse to delete while any entry federates with the trust domain.
    #[default]
    Restrict,
    /// Delete those entries too.
    Delete,
    /// Remove the trust domain from those entries' federation lists (bumping their revision).
    Dissociate,
}

/// How a foreign trust domain's bundle endpoint authenticates itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BundleEndpointProfile {
    /// `https_web`: a certificate from the Web PKI.
    HttpsWeb,
    /// `https_spiffe`: an X509-SVID of `endpoint_spiffe_id`, verified with the foreign bundle.
    HttpsSpiffe {
        /// The SPIFFE ID the endpoint's server certificate must carry.
        endpoint_spiffe_id: SpiffeId,
    },
}

/// A federation relationship with a foreign trust domain. Its bundle lives with the other
/// bundles ([`Datastore::put_bundle`](crate::Datastore::put_bundle)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationRelationship {
    /// The foreign trust domain.
    pub trust_domain: TrustDomain,
    /// Where its bundle is published (`https://...`).
    pub bundle_endpoint_url: String,
    /// How that endpoint authenticates.
    pub profile: BundleEndpointProfile,
}
