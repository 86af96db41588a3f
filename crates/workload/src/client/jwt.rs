//! The JWT-SVID RPCs of the client.

use lanyard_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, ValidateJwtsvidRequest,
};
use lanyard_spiffe::bundle::parse_jwks;
use lanyard_spiffe::{JwtBundleSet, SpiffeId, TrustDomain};
use serde_json::{Map, Value};

use super::{ClientError, WorkloadClient};
use crate::JwtSvidItem;

impl WorkloadClient {
    /// `FetchJWTSVID`: JWT-SVIDs for `audience`, one per identity of this process, or only
    /// for `spiffe_id`.
    ///
    /// # Errors
    ///
    /// A refusal from the server, or an answer without SVIDs or with an invalid SPIFFE ID.
    pub async fn fetch_jwt_svids(
        &mut self,
        audience: &[String],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidItem>, ClientError> {
        let answer = self
            .inner
            .fetch_jwtsvid(JwtsvidRequest {
                audience: audience.to_vec(),
                spiffe_id: spiffe_id.map(ToString::to_string).unwrap_or_default(),
            })
            .await?
            .into_inner();
        if answer.svids.is_empty() {
            return Err(ClientError::Invalid(
                "the response holds no JWT-SVID".into(),
            ));
        }
        answer
            .svids
            .into_iter()
            .map(|s| {
                let id = SpiffeId::parse(&s.spiffe_id).map_err(|e| {
                    ClientError::Invalid(format!("spiffe_id {:?}: {e}", s.spiffe_id))
                })?;
                Ok(JwtSvidItem {
                    spiffe_id: id,
                    token: s.svid,
                    hint: s.hint,
                })
            })
            .collect()
    }

    /// The first message of `FetchJWTBundles`, parsed.
    ///
    /// # Errors
    ///
    /// A refusal from the server or an invalid message.
    pub async fn fetch_jwt_bundles(&mut self) -> Result<JwtBundleSet, ClientError> {
        let mut stream = self
            .inner
            .fetch_jwt_bundles(JwtBundlesRequest {})
            .await?
            .into_inner();
        let first = stream.message().await?.ok_or(ClientError::Empty)?;
        parse_jwt_bundles(&first)
    }

    /// Every message of `FetchJWTBundles`, parsed, until the server ends the stream. Each
    /// item is the complete set: a trust domain missing from a later item has been removed.
    ///
    /// # Errors
    ///
    /// When the stream cannot be opened; later failures arrive as stream items.
    pub async fn watch_jwt_bundles(
        &mut self,
    ) -> Result<
        impl futures::Stream<Item = Result<JwtBundleSet, ClientError>> + Send + use<>,
        ClientError,
    > {
        use futures::StreamExt;
        let stream = self
            .inner
            .fetch_jwt_bundles(JwtBundlesRequest {})
            .await?
            .into_inner();
        Ok(stream.map(|message| parse_jwt_bundles(&message?)))
    }

    /// `ValidateJWTSVID`: the SPIFFE ID and the claims of `token` once the server has
    /// validated it for `audience`.
    ///
    /// # Errors
    ///
    /// A refusal from the server (an invalid token is `InvalidArgument`) or an invalid answer.
    pub async fn validate_jwt_svid(
        &mut self,
        audience: &str,
        token: &str,
    ) -> Result<(SpiffeId, Map<String, Value>), ClientError> {
        let answer = self
            .inner
            .validate_jwtsvid(ValidateJwtsvidRequest {
                audience: audience.to_string(),
                svid: token.to_string(),
            })
            .await?
            .into_inner();
        let id = SpiffeId::parse(&answer.spiffe_id)
            .map_err(|e| ClientError::Invalid(format!("spiffe_id {:?}: {e}", answer.spiffe_id)))?;
        let claims = answer
            .claims
            .as_ref()
            .map(crate::claims::to_json)
            .unwrap_or_default();
        Ok((id, claims))
    }
}

/// Parses one `FetchJWTBundles` message: at least one bundle, each key a trust domain.
fn parse_jwt_bundles(message: &JwtBundlesResponse) -> Result<JwtBundleSet, ClientError> {
    if message.bundles.is_empty() {
        return Err(ClientError::Invalid("the response holds no bundle".into()));
    }
    let mut set = JwtBundleSet::new();
    for (td, jwks) in &message.bundles {
        let trust_domain = TrustDomain::from_name_or_id(td)
            .map_err(|e| ClientError::Invalid(format!("bundle key {td:?}: {e}")))?;
        let bundle = parse_jwks(trust_domain, jwks)
            .map_err(|e| ClientError::Invalid(format!("JWT bundle of {td}: {e}")))?;
        set.insert(bundle);
    }
    Ok(set)
}
