//! Token tests: RFC vectors, round trips, and one test per known attack on bearer JWTs (`alg:
//! none`, algorithm confusion, unknown keys, embedded keys, `kid` injection, ECDSA r = s = 0, time
//! and claim checks, oversized tokens), each run through [`Verifier::verify`].

use std::cell::Cell;

use chrono::TimeDelta;
use proptest::prelude::*;
use ring::hmac;
use serde_json::{Value, json};

use super::*;
use crate::clock::ManualClock;
use crate::keys::{Algorithm, Jwk, KeyRing, SigningKey, VerifyingKey, b64};

const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://auth.gha.test";
const AUDIENCE: &str = "field-service.api";

fn verifier() -> Verifier {
    verifier_at(NOW)
}

fn verifier_at(now: i64) -> Verifier {
    let validation = Validation::new(ISSUER, [AUDIENCE, "ap-automation.api"]).unwrap();
    Verifier::new(validation, ManualClock::at_unix(now).shared())
}

fn claims() -> AccessClaims {
    AccessClaims::new(
        ISSUER,
        "user-42",
        AUDIENCE,
        "mfs-app",
        NOW,
        TimeDelta::minutes(10),
    )
    .unwrap()
    .with_scopes(["orders.read", "orders.write"])
}

fn claims_json() -> Value {
    serde_json::to_value(claims()).unwrap()
}

fn es256() -> SigningKey {
    SigningKey::generate(Algorithm::ES256).unwrap()
}

fn header_for(key: &SigningKey) -> Value {
    json!({ "alg": key.algorithm().name(), "typ": "at+jwt", "kid": key.kid() })
}

/// A token with any header and payload, signed by `key` whatever the header says.
fn forge(header: &Value, payload: &Value, key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(payload.to_string().as_bytes())
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(&signature))
}

/// A token with any header and payload and the given raw signature bytes.
fn with_signature(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(payload.to_string().as_bytes()),
        b64::encode(signature)
    )
}

fn verify(token: &str, keys: &impl KeyResolver) -> Result<Verified<AccessClaims>, JwtError> {
    verifier().verify::<AccessClaims>(token, keys)
}

/// A resolver that counts lookups, to show a token was refused before any key was looked up.
struct Counting<'a> {
    inner: &'a VerifyingKey,
    calls: Cell<usize>,
}

impl KeyResolver for Counting<'_> {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.calls.set(self.calls.get() + 1);
        self.inner.resolve(kid)
    }
}

// ---- RFC test vectors ----

/// RFC 7515 Appendix A.3: the ES256 example key verifies the example JWS.
#[test]
fn rfc7515_a3_es256_signature_verifies() {
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }))
    .unwrap();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    assert_eq!(key.algorithm(), Algorithm::ES256);
    let jws = concat!(
        "eyJhbGciOiJFUzI1NiJ9",
        ".",
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
        ".",
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
    );
    let (input, signature) = jws.rsplit_once('.').unwrap();
    let signature = b64::decode(signature).unwrap();
    assert!(key.verify_signature(input.as_bytes(), &signature));
    let mut tampered = signature.clone();
    tampered[10] ^= 1;
    assert!(!key.verify_signature(input.as_bytes(), &tampered));
    assert!(!key.verify_signature(b"eyJhbGciOiJFUzI1NiJ9.e30", &signature));

    // The RFC's private key `d`, imported through PKCS#8, gives the same public JWK and signs
    // what the RFC's public key verifies.
    let d = b64::decode("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI").unwrap();
    let mut point = vec![4];
    point.extend(b64::decode(jwk.x.as_deref().unwrap()).unwrap());
    point.extend(b64::decode(jwk.y.as_deref().unwrap()).unwrap());
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &d,
        &point,
    )
    .unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let signing = SigningKey::from_pkcs8_der(Algorithm::ES256, pkcs8.as_ref()).unwrap();
    assert_eq!(signing.public_jwk().x, jwk.x);
    assert_eq!(signing.public_jwk().y, jwk.y);
    assert_eq!(signing.kid(), jwk.thumbprint().unwrap());
    let fresh = signing.sign(input.as_bytes()).unwrap();
    assert!(key.verify_signature(input.as_bytes(), &fresh));
}

/// RFC 8037 Appendix A.4 (and A.3): Ed25519 is deterministic, so signing the example payload
/// with the example key gives the RFC's signature byte for byte.
#[test]
fn rfc8037_a4_ed25519_signature_matches() {
    let seed = b64::decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
    // PKCS#8 v1 for Ed25519 (RFC 8410 §7): fixed prefix, then the 32-byte seed.
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&seed);
    let key = SigningKey::from_pkcs8_der(Algorithm::EdDSA, &pkcs8).unwrap();
    assert_eq!(
        key.public_jwk().x.as_deref(),
        Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    );
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");

    let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    assert_eq!(
        b64::decode("RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc").unwrap(),
        b"Example of Ed25519 signing"
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    assert_eq!(
        b64::encode(&signature),
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    let public = VerifyingKey::from_jwk(key.public_jwk()).unwrap();
    assert!(public.verify_signature(input.as_bytes(), &signature));
}

// ---- Round trips ----

#[test]
fn issue_then_verify_round_trips_for_every_algorithm() {
    for alg in Algorithm::ALL {
        let key = SigningKey::generate(alg).unwrap();
        let claims = claims();
        let token = issue(&key, &claims).unwrap();

        let header: Value =
            serde_json::from_slice(&b64::decode(token.split('.').next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(
            header,
            json!({ "alg": alg.name(), "typ": "at+jwt", "kid": key.kid() }),
            "{alg}"
        );

        let verified = verify(&token, &key.verifying_key()).unwrap();
        assert_eq!(verified.claims, claims, "{alg}");
        assert_eq!(
            verified.header,
            TokenHeader {
                alg,
                kid: key.kid().to_owned()
            }
        );
        assert_eq!(
            (verified.expires_at, verified.issued_at),
            (claims.exp, claims.iat)
        );

        // The two-step API the middleware uses gives the same result.
        let v = verifier();
        let header = v.parse_header(&token).unwrap();
        assert_eq!(header.kid, key.kid());
        let two_step = v
            .verify_with_key::<AccessClaims>(&token, &key.verifying_key())
            .unwrap();
        assert_eq!(two_step.claims, claims);

        // Typed custom claims.
        #[derive(serde::Deserialize)]
        struct Minimal {
            sub: String,
            scope: String,
        }
        let minimal = v.verify::<Minimal>(&token, &key.verifying_key()).unwrap();
        assert_eq!(
            (minimal.claims.sub.as_str(), minimal.claims.scope.as_str()),
            ("user-42", "orders.read orders.write")
        );
    }
}

#[test]
fn verifies_through_a_key_ring_and_a_fetched_jwks() {
    let schedule = crate::keys::KeySchedule::default();
    let start = chrono::DateTime::from_timestamp(NOW, 0).unwrap();
    let mut ring = KeyRing::with_initial(es256(), start);
    ring.add_next(
        SigningKey::generate(Algorithm::EdDSA).unwrap(),
        start,
        &schedule,
    )
    .unwrap();
    let token = issue(ring.active(start).unwrap(), &claims()).unwrap();
    assert!(verify(&token, &ring).is_ok());
    let served = ring.jwks(start).to_json().unwrap();
    let fetched = crate::keys::JwkSet::parse_lenient(&served).unwrap();
    assert_eq!(fetched.keys.len(), 2);
    assert!(verify(&token, &fetched).is_ok());
    assert!(verify(&token, &fetched.keys).is_ok());
}

#[test]
fn issue_refuses_claims_no_verifier_would_accept() {
    let key = es256();
    let mut no_aud = claims();
    no_aud.aud = Vec::<String>::new().into();
    assert_eq!(issue(&key, &no_aud), Err(JwtError::MissingClaim("aud")));
    let mut backwards = claims();
    backwards.exp = backwards.iat;
    assert_eq!(issue(&key, &backwards), Err(JwtError::InvalidClaims));
}

// ---- One test per known attack ----

#[test]
fn rejects_alg_none() {
    let key = es256();
    let resolver = Counting {
        inner: &key.verifying_key(),
        calls: Cell::new(0),
    };
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": key.kid() });
        for signature in [&b""[..], b"x"] {
            let token = with_signature(&header, &claims_json(), signature);
            assert_eq!(
                verify(&token, &resolver).unwrap_err(),
                JwtError::UnsupportedAlgorithm,
                "{alg}"
            );
        }
    }
    assert_eq!(resolver.calls.get(), 0, "refused before any key lookup");
}

#[test]
fn rejects_hs256_signed_with_the_public_key() {
    for alg in Algorithm::ALL {
        let key = SigningKey::generate(alg).unwrap();
        let public = key.verifying_key();
        // Every form an attacker might feed an HMAC as "the public key".
        let jwk_json = serde_json::to_vec(key.public_jwk()).unwrap();
        let raw = match alg {
            Algorithm::RS256 => b64::decode(key.public_jwk().n.as_deref().unwrap()).unwrap(),
            _ => b64::decode(key.public_jwk().x.as_deref().unwrap()).unwrap(),
        };
        for secret in [jwk_json, raw, key.kid().as_bytes().to_vec()] {
            for hs in ["HS256", "HS384", "HS512"] {
                let header = json!({ "alg": hs, "typ": "at+jwt", "kid": key.kid() });
                let input = format!(
                    "{}.{}",
                    b64::encode(header.to_string().as_bytes()),
                    b64::encode(claims_json().to_string().as_bytes())
                );
                let tag = hmac::sign(
                    &hmac::Key::new(hmac::HMAC_SHA256, &secret),
                    input.as_bytes(),
                );
                let token = format!("{input}.{}", b64::encode(tag.as_ref()));
                assert_eq!(
                    verify(&token, &public).unwrap_err(),
                    JwtError::UnsupportedAlgorithm,
                    "{alg} {hs}"
                );
            }
        }
    }
}

#[test]
fn rejects_algorithm_swapped_to_another_of_ours() {
    let es = es256();
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let rs = SigningKey::generate(Algorithm::RS256).unwrap();
    // Header claims EdDSA for the ES256 key id, signed by an Ed25519 key.
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": es.kid() });
    let token = forge(&header, &claims_json(), &ed);
    assert_eq!(
        verify(&token, &es.verifying_key()).unwrap_err(),
        JwtError::AlgorithmMismatch
    );
    // Header claims RS256 for the ES256 key id.
    let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": es.kid() });
    let token = forge(&header, &claims_json(), &rs);
    assert_eq!(
        verify(&token, &es.verifying_key()).unwrap_err(),
        JwtError::AlgorithmMismatch
    );
}

#[test]
fn rejects_a_token_signed_by_an_unknown_key() {
    let trusted = es256();
    let stranger = es256();
    let token = issue(&stranger, &claims()).unwrap();
    assert_eq!(
        verify(&token, &trusted.verifying_key()).unwrap_err(),
        JwtError::UnknownKey
    );
    // Naming the trusted key id does not help.
    let token = forge(&header_for(&trusted), &claims_json(), &stranger);
    assert_eq!(
        verify(&token, &trusted.verifying_key()).unwrap_err(),
        JwtError::InvalidSignature
    );
}

#[test]
fn ignores_embedded_jwk_jku_x5u_and_x5c() {
    let trusted = es256();
    let attacker = es256();
    let attacker_jwk = serde_json::to_value(attacker.public_jwk()).unwrap();
    let embedded = [
        ("jwk", attacker_jwk.clone()),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        (
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
    ];
    for (member, value) in &embedded {
        // The attacker's own kid with its key embedded: the kid is unknown, the embedded key unused.
        let mut header = header_for(&attacker);
        header[member] = value.clone();
        let token = forge(&header, &claims_json(), &attacker);
        assert_eq!(
            verify(&token, &trusted.verifying_key()).unwrap_err(),
            JwtError::UnknownKey,
            "{member}"
        );
        // The trusted kid with the attacker's key embedded: verified with the trusted key, fails.
        let mut header = header_for(&trusted);
        header[member] = value.clone();
        let token = forge(&header, &claims_json(), &attacker);
        assert_eq!(
            verify(&token, &trusted.verifying_key()).unwrap_err(),
            JwtError::InvalidSignature,
            "{member}"
        );
        // A genuine token carrying the member is neither helped nor refused by it.
        let token = forge(&header, &claims_json(), &trusted);
        assert!(verify(&token, &trusted.verifying_key()).is_ok(), "{member}");
    }
}

#[test]
fn rejects_kid_with_path_traversal() {
    let key = es256();
    let resolver = Counting {
        inner: &key.verifying_key(),
        calls: Cell::new(0),
    };
    for kid in [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "/etc/passwd",
        "keys/../../x",
        "a\\b",
    ] {
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
        let token = forge(&header, &claims_json(), &key);
        assert_eq!(
            verify(&token, &resolver).unwrap_err(),
            JwtError::BadKeyId,
            "{kid}"
        );
    }
    assert_eq!(resolver.calls.get(), 0);
}

#[test]
fn rejects_kid_with_injection() {
    let key = es256();
    let resolver = Counting {
        inner: &key.verifying_key(),
        calls: Cell::new(0),
    };
    let long = "k".repeat(129);
    for kid in [
        "' OR 1=1 --",
        "x\"; DROP TABLE keys; --",
        "$(reboot)",
        "k\nforged log line",
        "k\u{0}",
        &long,
        " ",
    ] {
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
        let token = forge(&header, &claims_json(), &key);
        assert_eq!(
            verify(&token, &resolver).unwrap_err(),
            JwtError::BadKeyId,
            "{kid:?}"
        );
    }
    assert_eq!(resolver.calls.get(), 0);
}

/// CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
#[test]
fn rejects_ecdsa_signature_with_r_and_s_zero() {
    let key = es256();
    let header = header_for(&key);
    let order =
        hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").unwrap();
    let r_s_order = [order.clone(), order].concat();
    for signature in [
        vec![0u8; 64],
        r_s_order,
        vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
    ] {
        let token = with_signature(&header, &claims_json(), &signature);
        assert_eq!(
            verify(&token, &key.verifying_key()).unwrap_err(),
            JwtError::InvalidSignature
        );
    }
}

#[test]
fn rejects_an_expired_token() {
    let key = es256();
    let token = issue(&key, &claims()).unwrap();
    let exp = claims().exp;
    assert!(
        verifier_at(exp + 59)
            .verify::<AccessClaims>(&token, &key.verifying_key())
            .is_ok()
    );
    let err = verifier_at(exp + 60)
        .verify::<AccessClaims>(&token, &key.verifying_key())
        .unwrap_err();
    assert_eq!(err, JwtError::Expired);
    let mut no_exp = claims_json();
    no_exp.as_object_mut().unwrap().remove("exp");
    let token = forge(&header_for(&key), &no_exp, &key);
    assert_eq!(
        verify(&token, &key.verifying_key()).unwrap_err(),
        JwtError::MissingClaim("exp")
    );
}

#[test]
fn rejects_a_token_not_yet_valid() {
    let key = es256();
    let mut payload = claims_json();
    payload["nbf"] = json!(NOW + 120);
    payload["exp"] = json!(NOW + 600);
    let token = forge(&header_for(&key), &payload, &key);
    assert_eq!(
        verify(&token, &key.verifying_key()).unwrap_err(),
        JwtError::NotYetValid
    );
    assert!(
        verifier_at(NOW + 60)
            .verify::<AccessClaims>(&token, &key.verifying_key())
            .is_ok()
    );
}

#[test]
fn rejects_a_token_issued_in_the_future() {
    let key = es256();
    let mut payload = claims_json();
    payload["iat"] = json!(NOW + 61);
    payload["nbf"] = json!(NOW);
    let token = forge(&header_for(&key), &payload, &key);
    assert_eq!(
        verify(&token, &key.verifying_key()).unwrap_err(),
        JwtError::IssuedInFuture
    );
    payload["iat"] = json!(NOW + 60);
    let token = forge(&header_for(&key), &payload, &key);
    assert!(verify(&token, &key.verifying_key()).is_ok());
}

#[test]
fn rejects_a_wrong_issuer() {
    let key = es256();
    for iss in [
        json!("https://evil.test"),
        json!("https://auth.gha.test/"),
        json!("HTTPS://AUTH.GHA.TEST"),
    ] {
        let mut payload = claims_json();
        payload["iss"] = iss;
        let token = forge(&header_for(&key), &payload, &key);
        assert_eq!(
            verify(&token, &key.verifying_key()).unwrap_err(),
            JwtError::WrongIssuer
        );
    }
    let mut payload = claims_json();
    payload.as_object_mut().unwrap().remove("iss");
    let token = forge(&header_for(&key), &payload, &key);
    assert_eq!(
        verify(&token, &key.verifying_key()).unwrap_err(),
        JwtError::MissingClaim("iss")
    );
}

#[test]
fn rejects_a_wrong_audience() {
    let key = es256();
    for aud in [
        json!("admin.api"),
        json!(["admin.api", "billing.api"]),
        json!([]),
        json!("field-service.api "),
    ] {
        let mut payload = claims_json();
        payload["aud"] = aud.clone();
        let token = forge(&header_for(&key), &payload, &key);
        assert_eq!(
            verify(&token, &key.verifying_key()).unwrap_err(),
            JwtError::WrongAudience,
            "{aud}"
        );
    }
    // One accepted audience among several is enough.
    let mut payload = claims_json();
    payload["aud"] = json!(["admin.api", "ap-automation.api"]);
    let token = forge(&header_for(&key), &payload, &key);
    assert!(verify(&token, &key.verifying_key()).is_ok());
}

#[test]
fn rejects_a_wrong_or_missing_typ() {
    let key = es256();
    for typ in [
        Some("JWT"),
        Some("at+JWT+x"),
        Some("application/jwt"),
        Some("dpop+jwt"),
        None,
    ] {
        let mut header = header_for(&key);
        match typ {
            Some(typ) => header["typ"] = json!(typ),
            None => {
                header.as_object_mut().unwrap().remove("typ");
            }
        }
        let token = forge(&header, &claims_json(), &key);
        assert_eq!(
            verify(&token, &key.verifying_key()).unwrap_err(),
            JwtError::WrongType,
            "{typ:?}"
        );
    }
    let mut header = header_for(&key);
    header["typ"] = json!("application/at+jwt");
    assert!(verify(&forge(&header, &claims_json(), &key), &key.verifying_key()).is_ok());
}

#[test]
fn rejects_an_oversized_token() {
    let key = es256();
    let mut big = claims();
    big.extra
        .insert("padding".into(), json!("x".repeat(8 * 1024)));
    let token = issue(&key, &big).unwrap();
    assert!(token.len() > DEFAULT_MAX_TOKEN_BYTES);
    assert_eq!(
        verify(&token, &key.verifying_key()).unwrap_err(),
        JwtError::TooLarge {
            max: DEFAULT_MAX_TOKEN_BYTES
        }
    );
    assert_eq!(
        parse_header(&token).unwrap_err(),
        JwtError::TooLarge {
            max: DEFAULT_MAX_TOKEN_BYTES
        }
    );
    // Size is checked before anything else: even garbage of that size gets the same answer.
    let garbage = "%".repeat(DEFAULT_MAX_TOKEN_BYTES + 1);
    assert_eq!(
        verify(&garbage, &key.verifying_key()).unwrap_err(),
        JwtError::TooLarge {
            max: DEFAULT_MAX_TOKEN_BYTES
        }
    );
    // The same token passes a verifier configured for larger tokens: size was the only problem.
    let roomy = Validation::new(ISSUER, [AUDIENCE])
        .unwrap()
        .with_max_token_bytes(16 * 1024)
        .unwrap();
    let roomy = Verifier::new(roomy, ManualClock::at_unix(NOW).shared());
    assert!(
        roomy
            .verify::<AccessClaims>(&token, &key.verifying_key())
            .is_ok()
    );
}

#[test]
fn rejects_malformed_tokens() {
    let key = es256();
    let public = key.verifying_key();
    let good = issue(&key, &claims()).unwrap();
    let segments: Vec<&str> = good.split('.').collect();
    let three = "a token has exactly three segments";
    let cases: Vec<(String, JwtError)> = vec![
        (
            format!("{}.{}", segments[0], segments[1]),
            JwtError::Malformed(three),
        ),
        (
            format!("{good}.{}", segments[2]),
            JwtError::Malformed(three),
        ),
        (String::new(), JwtError::Malformed(three)),
        ("garbage".into(), JwtError::Malformed(three)),
        (
            "..".into(),
            JwtError::Malformed("header is not a JSON object"),
        ),
        (
            format!("Bearer {good}"),
            JwtError::Malformed("header is not base64url"),
        ),
        (
            format!("{}=.{}.{}", segments[0], segments[1], segments[2]),
            JwtError::Malformed("header is not base64url"),
        ),
        (
            format!("{}.{}.{}=", segments[0], segments[1], segments[2]),
            JwtError::Malformed("signature is not base64url"),
        ),
        (
            format!("{}.{}.{}", segments[0], segments[1], "!!"),
            JwtError::Malformed("signature is not base64url"),
        ),
        (
            format!("{}.{}.{}", segments[0], "%%", segments[2]),
            JwtError::InvalidSignature,
        ),
        (
            format!(
                "{}.{}.{}",
                b64::encode(b"[\"ES256\"]"),
                segments[1],
                segments[2]
            ),
            JwtError::Malformed("header is not a JSON object"),
        ),
        (
            format!(
                "{}.{}.{}",
                b64::encode(b"\"at+jwt\""),
                segments[1],
                segments[2]
            ),
            JwtError::Malformed("header is not a JSON object"),
        ),
        (
            format!("{}.{}.{}", b64::encode(b"42"), segments[1], segments[2]),
            JwtError::Malformed("header is not a JSON object"),
        ),
        (
            format!(
                "{}.{}.{}",
                b64::encode(&[0xff, 0xfe, 0x7b]),
                segments[1],
                segments[2]
            ),
            JwtError::Malformed("header is not a JSON object"),
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(verify(&token, &public).unwrap_err(), expected, "{token}");
    }
    // Correctly signed, but the payload is not a claims object.
    for payload in [json!([1, 2]), json!("claims"), json!(null)] {
        let token = forge(&header_for(&key), &payload, &key);
        assert_eq!(
            verify(&token, &public).unwrap_err(),
            JwtError::InvalidClaims,
            "{payload}"
        );
    }
    // Correctly signed, registered claims fine, but not AccessClaims (no client_id).
    let mut payload = claims_json();
    payload.as_object_mut().unwrap().remove("client_id");
    let token = forge(&header_for(&key), &payload, &key);
    assert_eq!(
        verify(&token, &public).unwrap_err(),
        JwtError::InvalidClaims
    );
}

#[test]
fn rejects_a_crit_header() {
    let key = es256();
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!(null)] {
        let mut header = header_for(&key);
        header["crit"] = crit.clone();
        header["b64"] = json!(false);
        let token = forge(&header, &claims_json(), &key);
        assert_eq!(
            verify(&token, &key.verifying_key()).unwrap_err(),
            JwtError::CriticalHeader,
            "{crit}"
        );
    }
}

#[test]
fn two_step_api_refuses_a_key_with_another_kid() {
    let key = es256();
    let other = es256();
    let token = issue(&key, &claims()).unwrap();
    let err = verifier()
        .verify_with_key::<AccessClaims>(&token, &other.verifying_key())
        .unwrap_err();
    assert_eq!(err, JwtError::UnknownKey);
}

#[test]
fn error_messages_never_repeat_the_token() {
    let key = es256();
    let good = issue(&key, &claims()).unwrap();
    let mut payload = claims_json();
    payload["iss"] = json!("https://evil.test");
    let tokens = [
        forge(&header_for(&key), &payload, &key),
        format!("{good}x"),
        good.replace('.', ".."),
        forge(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": "' OR 1=1 --"}),
            &payload,
            &key,
        ),
    ];
    for token in tokens {
        let err = verify(&token, &key.verifying_key()).unwrap_err();
        let shown = format!("{err} {err:?}");
        for segment in token.split('.').filter(|s| s.len() > 8) {
            assert!(!shown.contains(segment), "{shown}");
        }
        assert!(
            !shown.contains("evil") && !shown.contains("OR 1=1"),
            "{shown}"
        );
    }
}

#[test]
fn dangerous_decode_reads_claims_without_checking_them() {
    let key = es256();
    let token = issue(&key, &claims()).unwrap();
    let claims = dangerous::decode_unverified_claims(&token).unwrap();
    assert_eq!(claims["sub"], "user-42");
    assert!(dangerous::decode_unverified_claims("a.W10.c").is_err());
}

// ---- Property tests: parsers of untrusted input never panic ----

fn token_shaped() -> impl Strategy<Value = String> {
    let segment = "[A-Za-z0-9_=+/.-]{0,80}";
    (segment, segment, segment).prop_map(|(h, p, s)| format!("{h}.{p}.{s}"))
}

proptest! {
    #[test]
    fn parse_header_never_panics(input in any::<String>()) {
        let _ = parse_header(&input);
    }

    #[test]
    fn parse_header_never_panics_on_token_shaped_input(input in token_shaped()) {
        let _ = parse_header(&input);
    }

    #[test]
    fn parse_header_never_panics_on_any_header_bytes(header in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_header(&format!("{}.e30.AA", b64::encode(&header)));
    }

    #[test]
    fn verify_never_panics_on_arbitrary_strings(input in any::<String>()) {
        let key = VerifyingKey::from_jwk(&serde_json::from_value(json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        })).unwrap()).unwrap();
        prop_assert!(verify(&input, &key).is_err());
    }

    #[test]
    fn verify_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let key = VerifyingKey::from_jwk(&serde_json::from_value(json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        })).unwrap()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verify(&text, &key).is_err());
        prop_assert!(verify(&token_of(&bytes), &key).is_err());
    }

    /// Signed by the trusted key, so the claims parser and time checks see arbitrary input.
    #[test]
    fn verify_never_panics_on_signed_arbitrary_payloads(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let key = fixed_key();
        let header = b64::encode(header_for(&key).to_string().as_bytes());
        let input = format!("{header}.{}", b64::encode(&payload));
        let signature = key.sign(input.as_bytes()).unwrap();
        let _ = verify(&format!("{input}.{}", b64::encode(&signature)), &key.verifying_key());
    }

    #[test]
    fn verify_never_panics_on_extreme_times(exp in any::<i64>(), nbf in any::<i64>(), iat in any::<i64>(), now in any::<i64>(), frac in any::<f64>()) {
        let key = fixed_key();
        let mut payload = claims_json();
        payload["exp"] = json!(exp);
        payload["nbf"] = json!(nbf);
        payload["iat"] = if frac.is_finite() { json!(frac) } else { json!(iat) };
        let token = forge(&header_for(&key), &payload, &key);
        let _ = verifier_at(now).verify::<AccessClaims>(&token, &key.verifying_key());
    }
}

fn token_of(bytes: &[u8]) -> String {
    let third = bytes.len() / 3;
    format!(
        "{}.{}.{}",
        b64::encode(&bytes[..third]),
        b64::encode(&bytes[third..2 * third]),
        b64::encode(&bytes[2 * third..])
    )
}

fn fixed_key() -> SigningKey {
    use std::sync::OnceLock;
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Algorithm::EdDSA).unwrap())
        .clone()
}
