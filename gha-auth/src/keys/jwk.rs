//! Public JSON Web Keys (RFC 7517), their RFC 7638 thumbprints, and key sets.

use serde::{Deserialize, Serialize};

use super::{KeyError, VerifyingKey, b64};

/// At most this many keys of a fetched set are looked at; the rest count as skipped.
pub const MAX_JWKS_KEYS: usize = 64;

/// Members that only private or symmetric JWKs carry. A published key holding one is never used:
/// anyone who can read the set could sign with it.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// A public JWK: exactly the members needed to verify ES256, EdDSA and RS256 signatures.
///
/// Unknown members are ignored on input and never written. There is deliberately no field for
/// private members, so a private key cannot end up in a published set through this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `EC`, `OKP` or `RSA` for the keys this crate uses.
    pub kty: String,
    /// Curve (`P-256`, `Ed25519`) for EC and OKP keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Key id; for keys made by this crate always the RFC 7638 thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The one algorithm this key is used with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use; `sig` for every key this crate publishes. A key whose `use` is present and
    /// is not `sig` is never used to verify.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Permitted operations (RFC 7517 §4.3). A key whose `key_ops` is present and lacks `verify`
    /// is never used to verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
}

impl Jwk {
    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order with
    /// no whitespace, base64url without padding. Stable across re-encodings of the same key, so it
    /// is the key id.
    pub fn thumbprint(&self) -> Result<String, KeyError> {
        let canonical = self.thumbprint_input()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        Ok(b64::encode(digest.as_ref()))
    }

    fn thumbprint_input(&self) -> Result<String, KeyError> {
        let member = |value: &Option<String>, name: &'static str| {
            value
                .as_deref()
                .ok_or(KeyError::InvalidJwk(name))
                .and_then(|v| serde_json::to_string(v).map_err(|_| KeyError::Encoding))
        };
        let kty = serde_json::to_string(&self.kty).map_err(|_| KeyError::Encoding)?;
        match self.kty.as_str() {
            "EC" => Ok(format!(
                r#"{{"crv":{},"kty":{kty},"x":{},"y":{}}}"#,
                member(&self.crv, "missing crv")?,
                member(&self.x, "missing x")?,
                member(&self.y, "missing y")?,
            )),
            "OKP" => Ok(format!(
                r#"{{"crv":{},"kty":{kty},"x":{}}}"#,
                member(&self.crv, "missing crv")?,
                member(&self.x, "missing x")?,
            )),
            "RSA" => Ok(format!(
                r#"{{"e":{},"kty":{kty},"n":{}}}"#,
                member(&self.e, "missing e")?,
                member(&self.n, "missing n")?,
            )),
            _ => Err(KeyError::UnsupportedJwk("key type")),
        }
    }
}

/// A JWK set (RFC 7517 §5), as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys, newest first when built by a key ring.
    pub keys: Vec<Jwk>,
}

/// The usable keys of a fetched JWK set, and how many were skipped.
#[derive(Debug, Clone, Default)]
pub struct ParsedJwkSet {
    /// Keys this crate can verify with, in set order, unique by key id.
    pub keys: Vec<VerifyingKey>,
    /// Keys left out: unknown type, curve or algorithm; a `use` or `key_ops` that excludes
    /// verification; malformed; insecure (see [`VerifyingKey::from_jwk`]); private; duplicate kid;
    /// or beyond [`MAX_JWKS_KEYS`]. Worth a metric, never an error.
    pub skipped: usize,
}

impl JwkSet {
    /// The key with this id, if any.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// The set as JSON bytes, ready to serve.
    pub fn to_json(&self) -> Result<Vec<u8>, KeyError> {
        serde_json::to_vec(self).map_err(|_| KeyError::Encoding)
    }

    /// Reads a fetched set, keeping the keys this crate can verify with and skipping the rest.
    ///
    /// An authority may publish keys of types we don't know (encryption keys, new curves); one of
    /// them must not make every token unverifiable. Only a document that is not a set at all is an
    /// error.
    pub fn parse_lenient(json: &[u8]) -> Result<ParsedJwkSet, KeyError> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet = serde_json::from_slice(json).map_err(|_| KeyError::InvalidJwkSet)?;
        let mut parsed = ParsedJwkSet::default();
        for (index, value) in raw.keys.into_iter().enumerate() {
            match usable_key(index, value, &parsed.keys) {
                Some(key) => parsed.keys.push(key),
                None => parsed.skipped += 1,
            }
        }
        Ok(parsed)
    }
}

fn usable_key(
    index: usize,
    value: serde_json::Value,
    kept: &[VerifyingKey],
) -> Option<VerifyingKey> {
    if index >= MAX_JWKS_KEYS {
        return None;
    }
    let object = value.as_object()?;
    if PRIVATE_MEMBERS.iter().any(|m| object.contains_key(*m)) {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let key = VerifyingKey::from_jwk(&jwk).ok()?;
    if kept.iter().any(|k| k.kid() == key.kid()) {
        return None;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, SigningKey};

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn rfc7638_thumbprint_of_the_rsa_example() {
        let jwk = Jwk {
            kty: "RSA".into(),
            n: Some(concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP",
                "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvzq",
                "Y368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0",
                "fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
            )
            .into()),
            e: Some("AQAB".into()),
            alg: Some("RS256".into()),
            kid: Some("2011-04-29".into()),
            crv: None,
            x: None,
            y: None,
            key_use: None,
            key_ops: None,
        };
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // The same key is usable for verification, and its kid stays the published one.
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.algorithm(), Algorithm::RS256);
        assert_eq!(key.kid(), "2011-04-29");
    }

    /// RFC 8037 §A.3: thumbprint of the example Ed25519 key.
    #[test]
    fn rfc8037_thumbprint_of_the_ed25519_example() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn serializes_use_and_omits_absent_members() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let json = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(json["use"], "sig");
        assert_eq!(json["alg"], "ES256");
        assert_eq!(json["kty"], "EC");
        assert!(json.get("n").is_none());
        assert!(json.get("d").is_none());
    }

    #[test]
    fn lenient_parsing_skips_what_it_cannot_use() {
        let es = SigningKey::generate(Algorithm::ES256).unwrap();
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let good_es = serde_json::to_value(es.public_jwk()).unwrap();
        let good_ed = serde_json::to_value(ed.public_jwk()).unwrap();
        let mut private = good_es.clone();
        private["d"] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI".into();
        let set = serde_json::json!({ "keys": [
            good_es,
            { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" },
            { "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384" },
            { "kty": "OKP", "crv": "X25519", "x": "AA", "kid": "x25519" },
            { "kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RSA-OAEP", "kid": "enc" },
            { "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "short" },
            { "kty": "PQC", "kid": "future" },
            "not an object",
            { "kty": 7 },
            private,
            good_ed.clone(),
            good_ed,
        ], "extra": true });
        let parsed = JwkSet::parse_lenient(set.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = parsed.keys.iter().map(VerifyingKey::kid).collect();
        assert_eq!(kids, [es.kid(), ed.kid()]);
        assert_eq!(parsed.skipped, 10);
    }

    #[test]
    fn a_document_that_is_not_a_set_is_an_error() {
        for bad in [&b"[]"[..], b"{}", b"{\"keys\":{}}", b"not json", b""] {
            assert_eq!(
                JwkSet::parse_lenient(bad).unwrap_err(),
                KeyError::InvalidJwkSet
            );
        }
    }

    #[test]
    fn too_many_keys_are_skipped() {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let one = serde_json::to_value(key.public_jwk()).unwrap();
        let keys = vec![serde_json::json!({"kty":"none"}); MAX_JWKS_KEYS];
        let mut set = serde_json::json!({ "keys": keys });
        set["keys"].as_array_mut().unwrap().push(one);
        let parsed = JwkSet::parse_lenient(set.to_string().as_bytes()).unwrap();
        assert!(parsed.keys.is_empty());
        assert_eq!(parsed.skipped, MAX_JWKS_KEYS + 1);
    }
}
