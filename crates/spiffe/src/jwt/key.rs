//! Public keys that verify JWT-SVIDs: EC P-256, P-384, P-521 and RSA (JWT-SVID §3.1).
//!
//! A [`JwtPublicKey`] is validated when built (the point is on its curve, the RSA modulus has a
//! usable size), so holding one means aws-lc-rs can verify with it. Keys come from
//! SubjectPublicKeyInfo DER or from JWK parameters (RFC 7518 §6.2-6.3, as raw big-endian bytes;
//! base64url is the bundle module's business).

use std::fmt;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents, VerificationAlgorithm};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{JwtAlgorithm, JwtError};

use crate::spki::{
    OID_CURVE_P256, OID_CURVE_P384, OID_CURVE_P521, OID_EC_PUBLIC_KEY, OID_RSA_ENCRYPTION,
    ec_curve_oid,
};

/// Smallest RSA modulus accepted, in bits (aws-lc-rs verifies 2048 to 8192).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// The elliptic curves of ES256, ES384 and ES512.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1), for ES256.
    P256,
    /// NIST P-384 (secp384r1), for ES384.
    P384,
    /// NIST P-521 (secp521r1), for ES512.
    P521,
}

impl EcCurve {
    /// The JWK `crv` name (RFC 7518 §6.2.1.1), e.g. `P-256`.
    pub fn jwk_name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }

    /// Reads a JWK `crv` name; `None` for other curves.
    pub fn from_jwk_name(name: &str) -> Option<Self> {
        [EcCurve::P256, EcCurve::P384, EcCurve::P521]
            .into_iter()
            .find(|c| c.jwk_name() == name)
    }

    /// Length in bytes of one coordinate (RFC 7518 §6.2.1.2: x and y are always this long).
    pub fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    /// The curve named by a dotted OID.
    pub(crate) fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            OID_CURVE_P256 => Some(EcCurve::P256),
            OID_CURVE_P384 => Some(EcCurve::P384),
            OID_CURVE_P521 => Some(EcCurve::P521),
            _ => None,
        }
    }

    /// The DER encoding of the curve's OID (tag and length included).
    fn oid_der(self) -> &'static [u8] {
        match self {
            EcCurve::P256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            EcCurve::P384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            EcCurve::P521 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            EcCurve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
}

/// A public key of a JWT bundle: what one `kid` names.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum JwtPublicKey {
    /// An EC key on P-256, P-384 or P-521.
    Ec(EcPublicKey),
    /// An RSA key of 2048 to 8192 bits.
    Rsa(RsaPublicKey),
}

/// An EC public key, held as its uncompressed point (`04 || x || y`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EcPublicKey {
    curve: EcCurve,
    point: Vec<u8>,
}

/// An RSA public key, held as big-endian modulus and exponent without leading zeros.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl JwtPublicKey {
    /// Reads a DER SubjectPublicKeyInfo holding an EC (P-256/P-384/P-521) or RSA key.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] for malformed DER, trailing bytes, other algorithms or curves,
    /// points off the curve and RSA moduli outside 2048..=8192 bits.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, JwtError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| invalid(format!("not a DER SubjectPublicKeyInfo: {e}")))?;
        if !rest.is_empty() {
            return Err(invalid(format!(
                "{} bytes follow the SubjectPublicKeyInfo: nothing may follow it",
                rest.len()
            )));
        }

        let alg = spki.algorithm.algorithm.to_id_string();
        match alg.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve_oid = ec_curve_oid(&spki);
                let curve = EcCurve::from_oid(&curve_oid).ok_or_else(|| {
                    invalid(format!(
                        "EC curve {curve_oid:?} is not supported: only P-256, P-384 and P-521 are"
                    ))
                })?;
                Self::from_ec_point(curve, &spki.subject_public_key.data)
            }
            OID_RSA_ENCRYPTION => match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => Self::from_rsa_components(rsa.modulus, rsa.exponent),
                _ => Err(invalid("RSA key is not a DER RSAPublicKey".into())),
            },
            _ => Err(invalid(format!(
                "key algorithm {alg} is not supported: only EC (P-256, P-384, P-521) and RSA are"
            ))),
        }
    }

    /// Encodes the key as DER SubjectPublicKeyInfo (named curve for EC, NULL parameters for RSA).
    pub fn to_spki_der(&self) -> Vec<u8> {
        match self {
            JwtPublicKey::Ec(ec) => {
                let mut alg = vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
                alg.extend_from_slice(ec.curve.oid_der());
                spki(&alg, &ec.point)
            }
            JwtPublicKey::Rsa(rsa) => {
                let alg = [
                    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
                ];
                let mut ints = der_uint(&rsa.n);
                ints.extend(der_uint(&rsa.e));
                spki(&alg, &tlv(0x30, &ints))
            }
        }
    }

    /// Builds an EC key from its JWK coordinates `x` and `y` (big-endian, full length each).
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when a coordinate has the wrong length or the point is not on
    /// the curve.
    pub fn from_ec_coordinates(curve: EcCurve, x: &[u8], y: &[u8]) -> Result<Self, JwtError> {
        let len = curve.coordinate_len();
        for (name, c) in [("x", x), ("y", y)] {
            if c.len() != len {
                return Err(invalid(format!(
                    "EC {} coordinate {name} is {} bytes: exactly {len} are required",
                    curve.jwk_name(),
                    c.len()
                )));
            }
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        Self::from_ec_point(curve, &point)
    }

    /// Builds an RSA key from its modulus and exponent (big-endian; leading zeros are dropped).
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when the modulus is outside 2048..=8192 bits or aws-lc-rs
    /// refuses the key (e.g. an even or too small exponent).
    pub fn from_rsa_components(n: &[u8], e: &[u8]) -> Result<Self, JwtError> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = bit_len(n);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(invalid(format!(
                "RSA modulus is {bits} bits: {MIN_RSA_BITS} to {MAX_RSA_BITS} bits are required"
            )));
        }
        let key = JwtPublicKey::Rsa(RsaPublicKey {
            n: n.to_vec(),
            e: e.to_vec(),
        });
        ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key.to_spki_der())
            .map_err(|err| invalid(format!("RSA key is not usable: {err}")))?;
        Ok(key)
    }

    /// The curve and the JWK coordinates `x`, `y` of an EC key; `None` for RSA.
    pub fn ec_coordinates(&self) -> Option<(EcCurve, &[u8], &[u8])> {
        match self {
            JwtPublicKey::Ec(ec) => {
                let len = ec.curve.coordinate_len();
                Some((ec.curve, &ec.point[1..1 + len], &ec.point[1 + len..]))
            }
            JwtPublicKey::Rsa(_) => None,
        }
    }

    /// The modulus `n` and exponent `e` of an RSA key (big-endian, no leading zeros).
    pub fn rsa_components(&self) -> Option<(&[u8], &[u8])> {
        match self {
            JwtPublicKey::Rsa(rsa) => Some((&rsa.n, &rsa.e)),
            JwtPublicKey::Ec(_) => None,
        }
    }

    /// True when tokens signed with `alg` can be verified with this key: ES256 needs P-256,
    /// ES384 P-384, ES512 P-521, and every RS*/PS* algorithm an RSA key.
    pub fn fits(&self, alg: JwtAlgorithm) -> bool {
        match self {
            JwtPublicKey::Ec(ec) => alg.ec_curve() == Some(ec.curve),
            JwtPublicKey::Rsa(_) => alg.is_rsa(),
        }
    }

    /// Checks a JWS signature over `message`; false also when the key does not fit `alg`.
    pub(crate) fn verify(&self, alg: JwtAlgorithm, message: &[u8], sig: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match self {
            JwtPublicKey::Ec(ec) => ec
                .curve
                .verification()
                .verify_sig(&ec.point, message, sig)
                .is_ok(),
            JwtPublicKey::Rsa(rsa) => {
                let params = match alg {
                    JwtAlgorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    JwtAlgorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    JwtAlgorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    JwtAlgorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    JwtAlgorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    JwtAlgorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                let components = RsaPublicKeyComponents {
                    n: &rsa.n,
                    e: &rsa.e,
                };
                components.verify(params, message, sig).is_ok()
            }
        }
    }

    fn from_ec_point(curve: EcCurve, point: &[u8]) -> Result<Self, JwtError> {
        let len = 1 + 2 * curve.coordinate_len();
        if point.len() != len || point.first() != Some(&0x04) {
            return Err(invalid(format!(
                "EC {} point is not in uncompressed form: 04 followed by {} bytes is required",
                curve.jwk_name(),
                len - 1
            )));
        }
        ParsedPublicKey::new(curve.verification(), point).map_err(|e| {
            invalid(format!(
                "EC {} point is not on the curve: {e}",
                curve.jwk_name()
            ))
        })?;
        Ok(JwtPublicKey::Ec(EcPublicKey {
            curve,
            point: point.to_vec(),
        }))
    }
}

impl fmt::Display for JwtPublicKey {
    /// A short description such as `EC P-256` or `RSA 2048-bit`, never the key bits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtPublicKey::Ec(ec) => write!(f, "EC {}", ec.curve.jwk_name()),
            JwtPublicKey::Rsa(rsa) => write!(f, "RSA {}-bit", bit_len(&rsa.n)),
        }
    }
}

impl fmt::Debug for JwtPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtPublicKey({self})")
    }
}

impl fmt::Debug for EcPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcPublicKey({})", self.curve.jwk_name())
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({}-bit)", bit_len(&self.n))
    }
}

impl EcPublicKey {
    /// The curve.
    pub fn curve(&self) -> EcCurve {
        self.curve
    }
}

fn invalid(reason: String) -> JwtError {
    JwtError::InvalidKey { reason }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Bits in a big-endian unsigned integer without leading zero bytes.
fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// SubjectPublicKeyInfo from the inside of its AlgorithmIdentifier and the key bits.
fn spki(alg_content: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0x00];
    bits.extend_from_slice(key);
    let mut content = tlv(0x30, alg_content);
    content.extend(tlv(0x03, &bits));
    tlv(0x30, &content)
}

/// A DER INTEGER for a non-negative big-endian value without leading zeros.
fn der_uint(value: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(value.len() + 1);
    if value.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0x00);
    }
    content.extend_from_slice(value);
    tlv(0x02, &content)
}

/// One DER tag-length-value (definite length, short or long form).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}
