//! The nine JWS algorithms a JWT-SVID may be signed with (JWT-SVID §3.1).

use std::fmt;

/// A JWS `alg` allowed for JWT-SVIDs (JWT-SVID §3.1); everything else, including `none`, the
/// HMAC family and EdDSA, is rejected before any key is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1 with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1 with SHA-512.
    PS512,
}

/// The allowed names, as written in error messages.
pub(crate) const ALLOWED_ALGS: &str =
    "RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512";

impl JwtAlgorithm {
    /// All nine, in the order of the JWT-SVID spec.
    pub const ALL: [JwtAlgorithm; 9] = [
        JwtAlgorithm::RS256,
        JwtAlgorithm::RS384,
        JwtAlgorithm::RS512,
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
        JwtAlgorithm::ES512,
        JwtAlgorithm::PS256,
        JwtAlgorithm::PS384,
        JwtAlgorithm::PS512,
    ];

    /// Reads an `alg` header value; names are case-sensitive (RFC 7515 §4.1.1), so `es256` is
    /// not ES256. Returns `None` for anything outside the nine.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == s)
    }

    /// The `alg` header value, e.g. `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS384 => "RS384",
            JwtAlgorithm::RS512 => "RS512",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::ES384 => "ES384",
            JwtAlgorithm::ES512 => "ES512",
            JwtAlgorithm::PS256 => "PS256",
            JwtAlgorithm::PS384 => "PS384",
            JwtAlgorithm::PS512 => "PS512",
        }
    }

    /// The curve an ES algorithm requires, `None` for the RSA ones.
    pub fn ec_curve(self) -> Option<super::EcCurve> {
        use super::EcCurve;
        match self {
            JwtAlgorithm::ES256 => Some(EcCurve::P256),
            JwtAlgorithm::ES384 => Some(EcCurve::P384),
            JwtAlgorithm::ES512 => Some(EcCurve::P521),
            _ => None,
        }
    }

    /// True for the RSA algorithms (RS* and PS*).
    pub fn is_rsa(self) -> bool {
        self.ec_curve().is_none()
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_the_nine_names() {
        for alg in JwtAlgorithm::ALL {
            assert_eq!(JwtAlgorithm::parse(alg.as_str()), Some(alg));
            assert!(ALLOWED_ALGS.contains(alg.as_str()));
        }
        for bad in [
            "none", "None", "HS256", "HS384", "HS512", "EdDSA", "es256", "ES256 ", "",
        ] {
            assert_eq!(JwtAlgorithm::parse(bad), None, "{bad}");
        }
    }
}
