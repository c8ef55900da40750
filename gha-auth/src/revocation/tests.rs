use serde_json::{Value, json};

use super::*;
use crate::clock::ManualClock;
use crate::jwt::{AccessClaims, Validation, Verifier, issue};
use crate::keys::{Algorithm, SigningKey, b64};

const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://auth.gha.test";

fn key() -> SigningKey {
    SigningKey::generate(Algorithm::ES256).unwrap()
}

fn feed() -> RevocationFeed {
    RevocationFeed {
        iss: ISSUER.into(),
        seq: 7,
        iat: NOW,
        exp: NOW + 3600,
        jtis: vec![RevokedJti {
            jti: "j1".into(),
            exp: NOW + 600,
        }],
        subjects: vec![SubjectNotBefore {
            sub: "alice".into(),
            not_before: NOW - 10,
        }],
        clients: vec![ClientNotBefore {
            client_id: "svc".into(),
            not_before: NOW - 20,
        }],
    }
}

fn verifier_at(now: i64) -> FeedVerifier {
    FeedVerifier::new(ISSUER, ManualClock::at_unix(now).shared())
}

/// A JWS with any header and payload, signed by `key` whatever the header says.
fn forge(header: &Value, payload: &[u8], key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(payload)
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(&signature))
}

fn header(key: &SigningKey) -> Value {
    json!({"alg": key.algorithm().name(), "typ": FEED_TYPE, "kid": key.kid()})
}

#[test]
fn round_trip() {
    let key = key();
    let token = sign(&key, &feed()).unwrap();
    let verified = verifier_at(NOW + 5)
        .verify(&token, &key.verifying_key())
        .unwrap();
    assert_eq!(verified, feed());
}

#[test]
fn a_feed_is_not_an_access_token_and_an_access_token_is_not_a_feed() {
    let key = key();
    let public = key.verifying_key();
    let token = sign(&key, &feed()).unwrap();
    let validation = Validation::new(ISSUER, ["api"]).unwrap();
    let tokens = Verifier::new(validation, ManualClock::at_unix(NOW).shared());
    assert_eq!(
        tokens.verify::<Value>(&token, &public).unwrap_err(),
        JwtError::WrongType
    );
    let claims =
        AccessClaims::new(ISSUER, "alice", "api", "svc", NOW, TimeDelta::minutes(5)).unwrap();
    let access = issue(&key, &claims).unwrap();
    assert_eq!(
        verifier_at(NOW).verify(&access, &public).unwrap_err(),
        FeedError::Jws(JwtError::WrongType)
    );
}

#[test]
fn header_rules_are_the_access_tokens() {
    let key = key();
    let public = key.verifying_key();
    let payload = serde_json::to_vec(&feed()).unwrap();
    let verifier = verifier_at(NOW);
    let cases = [
        (
            json!({"alg": "none", "typ": FEED_TYPE, "kid": key.kid()}),
            JwtError::UnsupportedAlgorithm,
        ),
        (
            json!({"alg": "HS256", "typ": FEED_TYPE, "kid": key.kid()}),
            JwtError::UnsupportedAlgorithm,
        ),
        (
            json!({"alg": "EdDSA", "typ": FEED_TYPE, "kid": key.kid()}),
            JwtError::AlgorithmMismatch,
        ),
        (
            json!({"alg": "ES256", "typ": FEED_TYPE, "kid": key.kid(), "crit": ["x"]}),
            JwtError::CriticalHeader,
        ),
        (
            json!({"alg": "ES256", "typ": FEED_TYPE, "kid": "../../etc/passwd"}),
            JwtError::BadKeyId,
        ),
        (
            json!({"alg": "ES256", "typ": "JWT", "kid": key.kid()}),
            JwtError::WrongType,
        ),
        (
            json!({"alg": "ES256", "kid": key.kid()}),
            JwtError::WrongType,
        ),
        (
            json!({"alg": "ES256", "typ": FEED_TYPE, "kid": "someone-else"}),
            JwtError::UnknownKey,
        ),
    ];
    for (header, expected) in cases {
        let token = forge(&header, &payload, &key);
        assert_eq!(
            verifier.verify(&token, &public).unwrap_err(),
            FeedError::Jws(expected),
            "{header}"
        );
    }
    // The media-type form is accepted; an embedded key is ignored, not trusted.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let token = forge(
        &json!({"alg": "ES256", "typ": "application/gha-revocations+jwt", "kid": key.kid(),
                "jwk": {"kty": "EC"}, "jku": "https://evil"}),
        &payload,
        &key,
    );
    assert!(verifier.verify(&token, &public).is_ok());
    let forged = forge(&header(&key), &payload, &other);
    assert_eq!(
        verifier.verify(&forged, &public).unwrap_err(),
        FeedError::Jws(JwtError::InvalidSignature)
    );
}

#[test]
fn times_and_issuer_are_checked() {
    let key = key();
    let public = key.verifying_key();
    let token = sign(&key, &feed()).unwrap();
    assert_eq!(
        verifier_at(NOW + 3600 + 60).verify(&token, &public),
        Err(FeedError::Expired)
    );
    assert!(verifier_at(NOW + 3600 + 59).verify(&token, &public).is_ok());
    assert_eq!(
        verifier_at(NOW - 61).verify(&token, &public),
        Err(FeedError::IssuedInFuture)
    );
    let other = FeedVerifier::new("https://other", ManualClock::at_unix(NOW).shared());
    assert_eq!(other.verify(&token, &public), Err(FeedError::WrongIssuer));
}

#[test]
fn size_is_bounded_before_decoding() {
    let key = key();
    let mut big = feed();
    big.jtis = (0..200)
        .map(|i| RevokedJti {
            jti: format!("jti-{i:040}"),
            exp: NOW + 600,
        })
        .collect();
    let token = sign(&key, &big).unwrap();
    let verifier = verifier_at(NOW).with_max_bytes(2048);
    assert_eq!(
        verifier.verify(&token, &key.verifying_key()),
        Err(FeedError::Jws(JwtError::TooLarge { max: 2048 }))
    );
}

#[test]
fn payload_parsing_is_strict() {
    let good = serde_json::to_value(feed()).unwrap();
    assert!(RevocationFeed::parse(good.to_string().as_bytes()).is_ok());
    let mut bad: Vec<Value> = Vec::new();
    for member in ["iss", "seq", "iat", "exp", "jtis", "subjects", "clients"] {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(member);
        bad.push(v);
    }
    let mut unknown = good.clone();
    unknown["extra"] = json!(1);
    bad.push(unknown);
    let mut entry_unknown = good.clone();
    entry_unknown["jtis"][0]["why"] = json!("x");
    bad.push(entry_unknown);
    let mut negative_seq = good.clone();
    negative_seq["seq"] = json!(-1);
    bad.push(negative_seq);
    let mut float_time = good.clone();
    float_time["jtis"][0]["exp"] = json!(1.5);
    bad.push(float_time);
    let mut empty_id = good.clone();
    empty_id["subjects"][0]["sub"] = json!("");
    bad.push(empty_id);
    let mut long_id = good.clone();
    long_id["clients"][0]["client_id"] = json!("x".repeat(MAX_FEED_ID_LEN + 1));
    bad.push(long_id);
    let mut control = good.clone();
    control["jtis"][0]["jti"] = json!("a\nb");
    bad.push(control);
    let mut backwards = good.clone();
    backwards["exp"] = json!(NOW - 1);
    bad.push(backwards);
    for value in &bad {
        assert!(
            RevocationFeed::parse(value.to_string().as_bytes()).is_err(),
            "{value}"
        );
    }
    let duplicate = format!(
        r#"{{"iss":"{ISSUER}","iss":"https://evil","seq":1,"iat":{NOW},"exp":{},"jtis":[],"subjects":[],"clients":[]}}"#,
        NOW + 1
    );
    assert!(RevocationFeed::parse(duplicate.as_bytes()).is_err());
    for garbage in [&b"[]"[..], b"null", b"", b"{", b"\"x\""] {
        assert!(RevocationFeed::parse(garbage).is_err());
    }
}

#[test]
fn too_many_entries_are_refused() {
    let mut big = feed();
    big.jtis = (0..=MAX_FEED_ENTRIES)
        .map(|i| RevokedJti {
            jti: i.to_string(),
            exp: NOW,
        })
        .collect();
    assert_eq!(
        sign(&key(), &big),
        Err(FeedError::Payload("too many entries"))
    );
}
