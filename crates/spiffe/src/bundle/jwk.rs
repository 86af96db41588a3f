//! One JWK: reading the key parameters of `jwt-svid` and `x509-svid` entries and writing them
//! (RFC 7517 §4, RFC 7518 §6; binary members are unpadded base64url).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{BundleDocError, SkipReason};
use crate::jwt::error::{quoted, shown};
use crate::jwt::{EcCurve, JwtPublicKey, MAX_RSA_BITS, MIN_RSA_BITS};

use crate::spki::{OID_EC_PUBLIC_KEY, OID_ED25519, OID_RSA_ENCRYPTION, ec_curve_oid};

/// Reads the JWT-SVID key of a JWK: `Ok(Err(reason))` when the spec says to ignore it.
pub(crate) fn read_jwt_key(
    index: usize,
    jwk: &Map<String, Value>,
) -> Result<Result<JwtPublicKey, SkipReason>, BundleDocError> {
    let invalid = |source| BundleDocError::InvalidKey { index, source };
    match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => {
            let crv = required_str(index, jwk, "crv")?;
            let Some(curve) = EcCurve::from_jwk_name(crv) else {
                return Ok(Err(SkipReason::UnsupportedCurve(quoted(crv))));
            };
            let x = base64url(index, jwk, "x")?;
            let y = base64url(index, jwk, "y")?;
            JwtPublicKey::from_ec_coordinates(curve, &x, &y)
                .map(Ok)
                .map_err(invalid)
        }
        Some("RSA") => {
            let n = base64url(index, jwk, "n")?;
            let e = base64url(index, jwk, "e")?;
            let bits = bit_len(&n);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Ok(Err(SkipReason::UnsupportedRsaSize(bits)));
            }
            JwtPublicKey::from_rsa_components(&n, &e)
                .map(Ok)
                .map_err(invalid)
        }
        other => Ok(Err(kty_skip(other, "EC and RSA"))),
    }
}

/// The reason to skip a JWK whose `kty` is not one of `known`.
pub(crate) fn kty_skip(kty: Option<&str>, known: &'static str) -> SkipReason {
    match kty {
        None => SkipReason::MissingKty,
        Some(kty) => SkipReason::UnknownKty {
            kty: quoted(kty),
            known,
        },
    }
}

/// Key parameters as they appear in a JWK, for comparing and writing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyParams {
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Okp {
        crv: &'static str,
        x: Vec<u8>,
    },
}

impl KeyParams {
    /// The JWK parameters of a certificate's public key: EC P-256/P-384/P-521 (uncompressed
    /// point), RSA of any size, or Ed25519.
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, String> {
        let alg = spki.algorithm.algorithm.to_id_string();
        let bits = &spki.subject_public_key.data;
        match alg.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve_oid = ec_curve_oid(spki);
                let curve = EcCurve::from_oid(&curve_oid)
                    .ok_or_else(|| format!("EC curve {curve_oid} has no JWK name"))?;
                let len = curve.coordinate_len();
                if bits.len() != 1 + 2 * len || bits.first() != Some(&0x04) {
                    return Err("EC point is not uncompressed".into());
                }
                Ok(KeyParams::Ec {
                    crv: curve.jwk_name(),
                    x: bits[1..1 + len].to_vec(),
                    y: bits[1 + len..].to_vec(),
                })
            }
            OID_RSA_ENCRYPTION => match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => Ok(KeyParams::Rsa {
                    n: strip_zeros(rsa.modulus).to_vec(),
                    e: strip_zeros(rsa.exponent).to_vec(),
                }),
                _ => Err("RSA key is not a DER RSAPublicKey".into()),
            },
            OID_ED25519 if bits.len() == 32 => Ok(KeyParams::Okp {
                crv: "Ed25519",
                x: bits.to_vec(),
            }),
            _ => Err(format!("key algorithm {alg} has no JWK form here")),
        }
    }

    /// The parameters of a JWT-SVID key.
    pub(crate) fn from_jwt_key(key: &JwtPublicKey) -> Self {
        if let Some((curve, x, y)) = key.ec_coordinates() {
            KeyParams::Ec {
                crv: curve.jwk_name(),
                x: x.to_vec(),
                y: y.to_vec(),
            }
        } else {
            let (n, e) = key.rsa_components().unwrap_or_default();
            KeyParams::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            }
        }
    }

    /// `kty` and the key members, ready for `use` and `kid`/`x5c` to be added.
    pub(crate) fn to_members(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
        match self {
            KeyParams::Ec { crv, x, y } => {
                m.insert("kty".into(), "EC".into());
                m.insert("crv".into(), (*crv).into());
                m.insert("x".into(), b64(x));
                m.insert("y".into(), b64(y));
            }
            KeyParams::Rsa { n, e } => {
                m.insert("kty".into(), "RSA".into());
                m.insert("n".into(), b64(n));
                m.insert("e".into(), b64(e));
            }
            KeyParams::Okp { crv, x } => {
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), (*crv).into());
                m.insert("x".into(), b64(x));
            }
        }
        m
    }

    /// Fails unless `jwk` carries exactly these parameters (leading zeros of n and e aside).
    pub(crate) fn check_matches(
        &self,
        index: usize,
        jwk: &Map<String, Value>,
    ) -> Result<(), BundleDocError> {
        let mismatch = |detail: String| BundleDocError::X5cKeyMismatch { index, detail };
        let expected = self.to_members();
        for name in ["kty", "crv", "x", "y", "n", "e"] {
            let Some(want) = expected.get(name) else {
                continue;
            };
            let same = if matches!(name, "n" | "e") {
                // Base64urlUInt may carry leading zero octets from some producers.
                let got = base64url(index, jwk, name)?;
                let want = URL_SAFE_NO_PAD.decode(want.as_str().unwrap_or_default());
                want.is_ok_and(|w| strip_zeros(&got) == w.as_slice())
            } else {
                jwk.get(name) == Some(want)
            };
            if !same {
                let got = jwk.get(name).map_or_else(|| "missing".to_owned(), shown);
                return Err(mismatch(format!(
                    "\"{name}\" is {got}, the certificate has {want}"
                )));
            }
        }
        Ok(())
    }
}

/// A required string member.
pub(crate) fn required_str<'a>(
    index: usize,
    jwk: &'a Map<String, Value>,
    member: &'static str,
) -> Result<&'a str, BundleDocError> {
    match jwk.get(member) {
        Some(Value::String(s)) => Ok(s),
        other => Err(BundleDocError::BadMember {
            index,
            member,
            problem: format!(
                "{}: a string is required",
                other.map_or_else(|| "missing".to_owned(), shown)
            ),
        }),
    }
}

/// A required unpadded base64url member (RFC 7518 §2 Base64urlUInt and coordinates).
pub(crate) fn base64url(
    index: usize,
    jwk: &Map<String, Value>,
    member: &'static str,
) -> Result<Vec<u8>, BundleDocError> {
    let text = required_str(index, jwk, member)?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| BundleDocError::BadMember {
            index,
            member,
            problem: format!("not unpadded base64url ({e}): RFC 7518 requires it"),
        })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_len(n: &[u8]) -> usize {
    let n = strip_zeros(n);
    match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}
