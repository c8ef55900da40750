//! Public keys that verify signatures; the algorithm is part of the key.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;

use super::{Algorithm, Jwk, KeyError, b64, pem, weak};

/// Smallest and largest RSA moduli accepted, in bits.
pub(crate) const RSA_MIN_BITS: usize = 2048;
pub(crate) const RSA_MAX_BITS: usize = 8192;

/// A public key bound to one algorithm and one key id.
///
/// Verification always uses the key's own algorithm, so a token cannot choose `none`, HMAC with
/// the public key as secret, or another curve. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct VerifyingKey {
    inner: Arc<Inner>,
}

struct Inner {
    alg: Algorithm,
    kid: String,
    jwk: Jwk,
    decoding: DecodingKey,
}

/// The raw public key of one algorithm, as a signing key exposes it.
pub(crate) enum PublicParts<'a> {
    /// Uncompressed SEC1 point `04 || x || y`.
    Ec(&'a [u8]),
    /// The 32-byte Ed25519 public key.
    Ed(&'a [u8]),
    /// Big-endian modulus and exponent.
    Rsa { n: &'a [u8], e: &'a [u8] },
}

impl VerifyingKey {
    /// Builds the key a JWK describes.
    ///
    /// Accepts EC P-256 (ES256), OKP Ed25519 (EdDSA) and RSA of 2048–8192 bits (RS256). Refused:
    /// a JWK naming another `alg`, a `use` other than `sig`, a `key_ops` without `verify`, and the
    /// insecure keys every constructor refuses (Ed25519 points of small order, RSA moduli with the
    /// ROCA fingerprint, even moduli, exponents below 3 or even). EC points are checked to be on
    /// the curve here, not at first use. The key id is the JWK's `kid`, else its thumbprint.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::UnsupportedJwk("use is not sig"));
        }
        if jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Err(KeyError::UnsupportedJwk("key_ops does not allow verify"));
        }
        let alg = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => Algorithm::ES256,
            ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
            ("RSA", _) => Algorithm::RS256,
            ("EC" | "OKP", _) => return Err(KeyError::UnsupportedJwk("curve")),
            _ => return Err(KeyError::UnsupportedJwk("key type")),
        };
        if jwk.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return Err(KeyError::UnsupportedJwk("algorithm"));
        }
        let member = |value: &Option<String>, what: &'static str| {
            value
                .as_deref()
                .and_then(b64::decode)
                .ok_or(KeyError::InvalidJwk(what))
        };
        let kid = match &jwk.kid {
            Some(kid) => kid.clone(),
            None => jwk.thumbprint()?,
        };
        match alg {
            Algorithm::ES256 => {
                let x = member(&jwk.x, "x is missing or not base64url")?;
                let y = member(&jwk.y, "y is missing or not base64url")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::InvalidJwk("P-256 coordinates must be 32 bytes"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::build(alg, kid, jwk.clone(), PublicParts::Ec(&point))
            }
            Algorithm::EdDSA => {
                let x = member(&jwk.x, "x is missing or not base64url")?;
                Self::build(alg, kid, jwk.clone(), PublicParts::Ed(&x))
            }
            Algorithm::RS256 => {
                let n = member(&jwk.n, "n is missing or not base64url")?;
                let e = member(&jwk.e, "e is missing or not base64url")?;
                Self::build(alg, kid, jwk.clone(), PublicParts::Rsa { n: &n, e: &e })
            }
        }
    }

    /// Checks the raw key and wraps it; `jwk` is what will be published for it. Every public key,
    /// from a JWK or from an imported private key, passes through here.
    pub(crate) fn build(
        alg: Algorithm,
        kid: String,
        jwk: Jwk,
        parts: PublicParts<'_>,
    ) -> Result<Self, KeyError> {
        let decoding = match parts {
            PublicParts::Ec(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .parse()
                    .map_err(|_| KeyError::InvalidJwk("not a P-256 point"))?;
                DecodingKey::from_ec_der(point)
            }
            PublicParts::Ed(public) => {
                let Ok(encoded) = <&[u8; 32]>::try_from(public) else {
                    return Err(KeyError::InvalidJwk("Ed25519 keys are 32 bytes"));
                };
                if weak::is_small_order_ed25519(encoded) {
                    return Err(KeyError::WeakKey("Ed25519 point of small order"));
                }
                UnparsedPublicKey::new(&ED25519, public)
                    .parse()
                    .map_err(|_| KeyError::InvalidJwk("not an Ed25519 key"))?;
                DecodingKey::from_ed_der(public)
            }
            PublicParts::Rsa { n, e } => {
                let n = strip_leading_zeros(n);
                let e = strip_leading_zeros(e);
                let bits = bit_length(n);
                if bits < RSA_MIN_BITS {
                    return Err(KeyError::RsaKeyTooSmall { bits });
                }
                if bits > RSA_MAX_BITS {
                    return Err(KeyError::RsaKeyTooLarge { bits });
                }
                if n.last().is_some_and(|b| b & 1 == 0) {
                    return Err(KeyError::InvalidJwk("RSA modulus is even"));
                }
                let exponent = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                if e.len() > 4 || exponent < 3 || exponent & 1 == 0 {
                    return Err(KeyError::InvalidJwk(
                        "RSA exponent must be odd, at least 3 and at most 32 bits",
                    ));
                }
                if weak::has_roca_fingerprint(n) {
                    return Err(KeyError::WeakKey("RSA modulus with the ROCA fingerprint"));
                }
                // PKCS#1 DER rather than (n, e): aws-lc parses it on the same path as a bare
                // `UnparsedPublicKey`, which is measurably cheaper than building from components.
                let der = rsa_public_key_der(n, e);
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der)
                    .parse()
                    .map_err(|_| KeyError::InvalidJwk("not an RSA public key"))?;
                DecodingKey::from_rsa_der(&der)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                alg,
                kid,
                jwk,
                decoding,
            }),
        })
    }

    /// The algorithm every signature checked with this key must use.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The key id tokens name in their `kid` header.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The public JWK, as published.
    pub fn jwk(&self) -> &Jwk {
        &self.inner.jwk
    }

    /// The public key as a PEM `PUBLIC KEY` block holding its DER SubjectPublicKeyInfo
    /// (RFC 5280, RFC 7468): the form programs that read keys from files expect (HAProxy's
    /// `jwt_verify`, OpenSSL). The DER is aws-lc's own encoding of the parsed key.
    pub fn to_spki_pem(&self) -> Result<String, KeyError> {
        let jwk = &self.inner.jwk;
        let member = |value: &Option<String>| {
            value
                .as_deref()
                .and_then(b64::decode)
                .ok_or(KeyError::Encoding)
        };
        let parsed = match self.inner.alg {
            Algorithm::ES256 => {
                let mut point = vec![0x04];
                point.extend_from_slice(&member(&jwk.x)?);
                point.extend_from_slice(&member(&jwk.y)?);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).parse()
            }
            Algorithm::EdDSA => UnparsedPublicKey::new(&ED25519, member(&jwk.x)?).parse(),
            Algorithm::RS256 => {
                let n = member(&jwk.n)?;
                let e = member(&jwk.e)?;
                let der = rsa_public_key_der(strip_leading_zeros(&n), strip_leading_zeros(&e));
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).parse()
            }
        }
        .map_err(|_| KeyError::Encoding)?;
        let der: PublicKeyX509Der<'static> = parsed.as_der().map_err(|_| KeyError::Encoding)?;
        Ok(pem::encode_public_key(der.as_ref()))
    }

    /// The jsonwebtoken form of the key, for code that calls jsonwebtoken directly.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.inner.decoding
    }

    /// Whether `signature` is a valid signature of `signing_input` by this key, with this key's
    /// algorithm. Goes through jsonwebtoken's aws-lc-rs provider (pinned, not the process default).
    pub fn verify_signature(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let Ok(verifier) = (DEFAULT_PROVIDER.verifier_factory)(
            &self.inner.alg.to_jsonwebtoken(),
            &self.inner.decoding,
        ) else {
            return false;
        };
        verifier.verify(signing_input, &signature.to_vec()).is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.inner.alg)
            .field("kid", &self.inner.kid)
            .finish()
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.alg == other.inner.alg
            && self.inner.kid == other.inner.kid
            && self.inner.jwk == other.inner.jwk
    }
}

impl Eq for VerifyingKey {}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1)
/// from minimal big-endian `n` and `e`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn push_len(out: &mut Vec<u8>, len: usize) {
        match len {
            0..=0x7f => out.push(len as u8),
            0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
            _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        }
    }
    fn push_integer(out: &mut Vec<u8>, value: &[u8]) {
        let pad = value.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        push_len(out, value.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 12);
    push_integer(&mut body, n);
    push_integer(&mut body, e);
    let mut der = Vec::with_capacity(body.len() + 4);
    der.push(0x30);
    push_len(&mut der, body.len());
    der.extend_from_slice(&body);
    der
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        Some(first) => big_endian.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(strip_leading_zeros(&[0, 0, 5, 0]), &[5, 0]);
    }

    /// The DER inside a `PUBLIC KEY` block, read back strictly: one block, nothing around it.
    fn spki_der_of(pem: &str) -> Vec<u8> {
        use base64::Engine;
        let body = pem
            .strip_prefix("-----BEGIN PUBLIC KEY-----\n")
            .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----\n"))
            .expect("one PUBLIC KEY block");
        assert!(body.lines().all(|line| line.len() <= 64), "{pem}");
        base64::engine::general_purpose::STANDARD
            .decode(body.replace('\n', ""))
            .unwrap()
    }

    #[test]
    fn spki_pem_is_the_key_and_verifies_its_signatures() {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            let key = super::super::SigningKey::generate(alg).unwrap();
            let pem = key.verifying_key().to_spki_pem().unwrap();
            let der = spki_der_of(&pem);
            // Read back, the SubjectPublicKeyInfo is the same key as the JWK, whichever way the
            // algorithm's own parser reads it.
            let verifies = |input: &[u8], signature: &[u8]| match alg {
                Algorithm::ES256 => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &der)
                    .verify(input, signature)
                    .is_ok(),
                Algorithm::EdDSA => {
                    // 12-byte prefix: SEQUENCE, AlgorithmIdentifier { id-Ed25519 }, BIT STRING.
                    assert_eq!(der.len(), 44);
                    UnparsedPublicKey::new(&ED25519, &der[12..])
                        .verify(input, signature)
                        .is_ok()
                }
                Algorithm::RS256 => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der)
                    .parse()
                    .unwrap()
                    .verify_sig(input, signature)
                    .is_ok(),
            };
            let signature = key.sign(b"header.payload").unwrap();
            assert!(verifies(b"header.payload", &signature), "{alg:?}");
            assert!(!verifies(b"header.payloaD", &signature), "{alg:?}");
        }
        // ES256: exactly the DER aws-lc gives for the key pair itself (the P-256 SPKI header,
        // then the uncompressed point).
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(b64::encode(&point[1..33])),
            y: Some(b64::encode(&point[33..])),
            n: None,
            e: None,
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
        };
        let der = spki_der_of(&VerifyingKey::from_jwk(&jwk).unwrap().to_spki_pem().unwrap());
        let expected: PublicKeyX509Der<'static> = pair.public_key().as_der().unwrap();
        assert_eq!(der, expected.as_ref());
        assert_eq!(
            hex::encode(&der[..26]),
            "3059301306072a8648ce3d020106082a8648ce3d030107034200"
        );
        assert_eq!(&der[26..], point);
    }

    #[test]
    fn rsa_der_matches_aws_lc() {
        use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair, RsaPublicKeyComponents};
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        assert_eq!(
            rsa_public_key_der(&parts.n, &parts.e),
            pair.public_key().as_ref()
        );
    }

    #[test]
    fn refuses_keys_for_other_uses_and_algorithms() {
        let base: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert!(VerifyingKey::from_jwk(&base).is_ok());
        let mut enc = base.clone();
        enc.key_use = Some("enc".into());
        assert!(matches!(
            VerifyingKey::from_jwk(&enc),
            Err(KeyError::UnsupportedJwk(_))
        ));
        let mut other_alg = base.clone();
        other_alg.alg = Some("ES256".into());
        assert!(matches!(
            VerifyingKey::from_jwk(&other_alg),
            Err(KeyError::UnsupportedJwk(_))
        ));
        let mut short = base;
        short.x = Some("AAAA".into());
        assert!(matches!(
            VerifyingKey::from_jwk(&short),
            Err(KeyError::InvalidJwk(_))
        ));
    }

    #[test]
    fn refuses_points_off_the_curve() {
        // RFC 7515 A.3's x with y changed in its last byte.
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5aw"}"#,
        )
        .unwrap();
        assert_eq!(
            VerifyingKey::from_jwk(&jwk).unwrap_err(),
            KeyError::InvalidJwk("not a P-256 point")
        );
    }

    #[test]
    fn refuses_small_rsa_keys() {
        let jwk = Jwk {
            kty: "RSA".into(),
            n: Some(b64::encode(&[0xc5; 128])),
            e: Some("AQAB".into()),
            crv: None,
            x: None,
            y: None,
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
        };
        assert_eq!(
            VerifyingKey::from_jwk(&jwk).unwrap_err(),
            KeyError::RsaKeyTooSmall { bits: 1024 }
        );
    }
}
