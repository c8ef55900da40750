//! Keys that must never verify a signature, on published vectors: Wycheproof's JWS tests 353–356
//! (`use` and `key_ops`) and JWK test 7 (a ROCA modulus), and the eight Ed25519 points of small
//! order in each of their encodings.

use aws_lc_rs::signature::{
    ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde_json::{Value, json};

use super::{Algorithm, Jwk, JwkSet, KeyError, SigningKey, VerifyingKey, b64};

/// Wycheproof's `kid-rsa-sign` key (JWS tests 353 and 355) and its RS256 signature of `foo`.
const RSA_N: &str = concat!(
    "kqGboBfAWttWPCA-0cGRgsY6SaYoIARt0B_PkaEcIq9HPYNdu9n6UuWHuuTHrjF_ZoQW97r5HaAorNvrMEGTGdxCHZdEt",
    "kHvNVVmrtxTBLiQCbCozXhFoIrVcr3qUBrdGnNn_M3jJi7Wg7p_-x62nS5gNG875oyheRkutHsQXikFZwsN3q_TsPNOVlC",
    "iHy8mxzaFTUQGm-X8UYexFyAivlDSjgDJLAZSWfxd7k9Gxuwa3AUfQqQcVcegmgKGCaErQ3qQbh1x7WB6iopE3_-GZ8HMA",
    "VtR9AmrVscqYsnjhaCehfAI0iKKs8zXr8tISc0ORbaalrkk03H1ZrsEnDKEWQ",
);
const RSA_JWS: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImtpZC1yc2Etc2lnbiJ9.Zm9v.HUwxI1-cZrZgcuOgBQ7G7NE-GrqK79l6GV1KT4",
    "DKXnSMFwC8pfZCzE7pmLE7mYpLCIvzC87yuOjuhT0uW5oe6aaAEtR978cm-q8dfly45flqMrd_ifhi9GCsMlyi8dpQ42O",
    "u1etZljFZuWjfyk8CN1c5DaHRwhqjScAPIFp6xmzKIRUJ_xdQfUSfSlujLaixtScU518EoNP4oo1v7E8RAz6ZO4g2N4Xqs",
    "8OvSxYydcoTEg42QnLHe9JnXgI37Q5gSwinwaPsG3Ry56UYiLoL8mCUa74S51y02VsIgVmmGWgaXjM-i_lCiKQDBiBnvWl",
    "ka4XhVuvd6ZWibM9cbCPtPg",
);

/// Wycheproof's `kid-ec-sign` key (JWS tests 354 and 356) and its ES256 signature of `foo`.
const EC_X: &str = "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY";
const EC_Y: &str = "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw";
const EC_JWS: &str = concat!(
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZC1lYy1zaWduIn0.Zm9v.5cA0OHyMP7ezamUd5c9kV-FrGxdx4hbGXOdplQku",
    "trqWrte5P-pAvsE3Ve6xSyU3YDQwUHjVVOtvcrEbbnZ8yA",
);

/// Wycheproof's `kid-rsa-roca-sign` key (JWK test 7): 2049 bits, made by the Infineon library.
const ROCA_N: &str = concat!(
    "AanFpofbj7KjD4Lf-N2hVMKR7yewSyXhhbirIMTGpfYEhZ_lnt5UoK98DnKIgArXGTu3MaW_HhFw16HGaTDUHqPrId7fe",
    "4r11CqRw09yBFuW79V8sYIwHdzCaWflUI6auImYbVfoN9_nD5n8N8SY9DwXw7mwZM9wREPXoDPgOoIWl6q_MPsp7n0zs3Z",
    "5ZaiQWOOzl1S9OhwAfSiiOwz6efnXEaxuTEtPd7BjSx7NaFka8Dx9U7YqXy2RFj1O9PjyaDGuRh7YXsX3iMUSP_wSyHQg",
    "_c_qHRtKUsNSGCT7OZg0hzm2KphtjnayKJvC64vAbROBR4Ubg6Bxg9IQVZ-QYyE",
);
/// Its RS256 signature of `foo` (the test's JWS).
const ROCA_JWS: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImtpZC1yc2Etcm9jYS1zaWduIn0.Zm9v.AF_6dFYBEaaI5OlOehaktwYarwKZwFFe",
    "KTNwz9ar6ntNh4k8oeQwiODJqT1nnX2KhrWMUc80JJIdaCq3y7wOSmlPrqRgrL5r9xqfQdokirCuynoq4Lbi226VlZmijm",
    "kyYtSeEbzvkhyjbY8cDQF_c2DMMQG8FBRNJPOSTxi_I75Twj0877G-16i3bAWcvFxcNKGQzSQNcp5Lvh15N2I3PDM5W7Ha",
    "FwPO0drzLR9dsDW9uDCqHvMMyshC7rgZdqfXpkaJL8Whn_mUScnLxS7J-2wVt9xKY3LpR97HoanIK-rcqYS_eq9hY_65te",
    "4qbwPCtQMjipIgIGo9HZrNRomAB1c",
);
/// The same key's private half as PKCS#8, as an operator might try to import it.
const ROCA_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQGpxaaH24+yow+C
3/jdoVTCke8nsEsl4YW4qyDExqX2BIWf5Z7eVKCvfA5yiIAK1xk7tzGlvx4RcNeh
xmkw1B6j6yHe33uK9dQqkcNPcgRblu/VfLGCMB3cwmln5VCOmriJmG1X6Dff5w+Z
/DfEmPQ8F8O5sGTPcERD16Az4DqCFpeqvzD7Ke59M7N2eWWokFjjs5dUvTocAH0o
ojsM+nn51xGsbkxLT3ewY0sezWhZGvA8fVO2Kl8tkRY9TvT48mgxrkYe2F7F94jF
Ej/8Esh0IP3P6h0bSlLDUhgk+zmYNIc5tiqYbY52siibwuuLwG0TgUeFG4OgcYPS
EFWfkGMhAgMBAAECggEANGpEqgz5j8BLNI1mEcK+sIVOr9AgMDWnRKisjAz4eWTt
HlYiTLSWY4QeMzNir/LzBEr1LbZteTAvG5dVc9FpRDy6Grngd6bzy5nONYWPy8a1
F88V+zT5OCgm2cd9N1EMzsOZEm1gE4xae1Z1dxptVsiGK+HvRypG/SMacch063aS
DM46Asvao8PjqWGy+ZGwnaprx5ME4ZWRMKtov8BVMvkrs1KeM7TtjMg27hvreTue
u8fbgNc9U93S2sWjw/4YvS72idsM95e+MCNwhKkrfufNhc5+8+pxD6cbiu8BnG4g
R0vuQUNJFx16BsskC7JgOwEUhUg1Q0pYYj3DA54OwQKBgQEVzQvKQvZsAE3qfoXf
FCSDxfs8UU90i0qPqKnH77H8Yd9WMJSrXyMe02YF2NWar2vc88SWWMUdV6yadzND
cuckUs9OBBO7To0gt/r0dqCBrZFjxVFBeFaRMKw86j62WuySmPmSdKnIcS2MMyo+
y4BANh2PJdRgUMx2Kqm25TDchQKBgQGIW9oF2KJELoHKEg3JfY3nqsKXHFftRb/d
0U7WhTKAyeZCYqVqZkyLk9OmS1XNPthTZfVNx2ojZx4E9O0o55ZY9lxgR+bRU/tr
vFFG8u0BF/COUEa3QrOhRLaCMWPnhmVg+TGxfG8K3RNcboZO3b8ZRnBM7AKljFNT
kaEXQmYM7QKBgG9hOqzplCtRI+w0ti/uv4Ulx8kzQIwVnNtkYE4NSGtMQmMoLzNW
fZpKX8lQWrQeSTzZb6RoCv/suwNjb2ZHl2z01rEM6Wxb3jGUEkYZmdjkYjqCTkXV
nb+wqB30PRiX8+oC821I4RnAZuajTPjIVq9oAwn1vOSxAIkQKeNumNyRAoGBAONy
E44GCfKqXxSrqJBgFy3vwEPm61WhdFr65c/XgPJFmBRtqORoDwFunWeuDjwfrTmT
RkNjUTTapv1Kmlx2+6HwlpY9uCEqpPnMPfV6B0f1/74P7R55LTZUZdRNG1Pwhb5U
VqlDr/9FLt8LNxJq20eknJ8KxXIASaGNLywTkqL1AoGAazvnD35JmJmI6VoGG4J/
koriDC+VENRIzJy9P9paHUtk7vVVPWfC2GzsvHXTF1ZrvqYmG+NtYxRkps6AQ8QK
io9XbQ7tTnYmbCH9rSXj7yim3A9Rry92/LsplWRW2H/EIviYk4XdQY3SpSXCbd30
fpVcJRhzF/SJ2ifEIPWd3NA=
-----END PRIVATE KEY-----
";

/// Every encoding of the eight Ed25519 points of small order: y ∈ {0, 1, −1, ±y₈} with either
/// sign bit, and the non-canonical y + p for y = 0 and y = 1 (the only small-order y below 19).
const SMALL_ORDER_ENCODINGS: [&str; 14] = [
    // y = 0: the two points of order 4 (x = ±√−1).
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    // y = 1: the identity, and its encoding with x = −0.
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000080",
    // y = −1: the point of order 2, and x = −0.
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    // y = ±y₈: the four points of order 8.
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    // y = p and p + 1: non-canonical encodings of y = 0 and the identity.
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

fn jwk(value: Value) -> Jwk {
    serde_json::from_value(value).unwrap()
}

fn rsa_jwk() -> Value {
    json!({ "kty": "RSA", "kid": "kid-rsa-sign", "n": RSA_N, "e": "AQAB" })
}

fn ec_jwk() -> Value {
    json!({ "kty": "EC", "crv": "P-256", "kid": "kid-ec-sign", "x": EC_X, "y": EC_Y })
}

fn ed25519_jwk(encoding: &[u8]) -> Jwk {
    jwk(json!({ "kty": "OKP", "crv": "Ed25519", "x": b64::encode(encoding) }))
}

fn with(mut value: Value, member: &str, content: Value) -> Jwk {
    value[member] = content;
    jwk(value)
}

/// The signing input and the decoded signature of a compact JWS.
fn split(jws: &str) -> (&str, Vec<u8>) {
    let (input, signature) = jws.rsplit_once('.').unwrap();
    (input, b64::decode(signature).unwrap())
}

fn assert_unsupported(jwk: &Jwk, what: &str) {
    assert!(
        matches!(
            VerifyingKey::from_jwk(jwk),
            Err(KeyError::UnsupportedJwk(_))
        ),
        "{what}: {:?}",
        VerifyingKey::from_jwk(jwk)
    );
}

/// Without `use` or `key_ops` the Wycheproof keys are usable and their signatures valid: the
/// refusals below are for those members alone.
#[test]
fn the_wycheproof_keys_verify_their_signatures() {
    for (key, jws) in [(rsa_jwk(), RSA_JWS), (ec_jwk(), EC_JWS)] {
        let key = VerifyingKey::from_jwk(&jwk(key)).unwrap();
        let (input, signature) = split(jws);
        assert!(
            key.verify_signature(input.as_bytes(), &signature),
            "{key:?}"
        );
    }
}

/// Wycheproof JWS tests 353 and 354.
#[test]
fn finding_11_jwk_use_enc_is_refused() {
    for key in [rsa_jwk(), ec_jwk()] {
        assert_unsupported(&with(key.clone(), "use", json!("enc")), "use enc");
        assert!(VerifyingKey::from_jwk(&with(key, "use", json!("sig"))).is_ok());
    }
}

/// Wycheproof JWS tests 355 and 356 (`key_ops: ["encrypt"]`), and other lists without `verify`.
#[test]
fn finding_11_jwk_key_ops_without_verify_is_refused() {
    for key in [rsa_jwk(), ec_jwk()] {
        for ops in [
            json!(["encrypt"]),
            json!([]),
            json!(["sign"]),
            json!(["Verify"]),
        ] {
            assert_unsupported(&with(key.clone(), "key_ops", ops.clone()), &ops.to_string());
        }
        for ops in [json!(["verify"]), json!(["sign", "verify"])] {
            assert!(
                VerifyingKey::from_jwk(&with(key.clone(), "key_ops", ops.clone())).is_ok(),
                "{ops}"
            );
        }
    }
}

#[test]
fn finding_11_ed25519_small_order_keys_are_refused() {
    for encoding in SMALL_ORDER_ENCODINGS {
        let encoding = hex::decode(encoding).unwrap();
        assert_eq!(
            VerifyingKey::from_jwk(&ed25519_jwk(&encoding)).unwrap_err(),
            KeyError::WeakKey("Ed25519 point of small order"),
            "{}",
            hex::encode(&encoding)
        );
    }
}

/// Why: the crypto backend alone accepts `R = identity, S = 0` under the identity key, for any
/// message.
#[test]
fn the_backend_alone_accepts_a_forgery_under_the_identity_key() {
    let identity = hex::decode(SMALL_ORDER_ENCODINGS[2]).unwrap();
    let mut forgery = [0u8; 64];
    forgery[..32].copy_from_slice(&identity);
    for message in [&b"header.payload"[..], b"any other message"] {
        assert!(
            UnparsedPublicKey::new(&ED25519, &identity)
                .verify(message, &forgery)
                .is_ok()
        );
    }
}

#[test]
fn ordinary_ed25519_keys_are_accepted() {
    // RFC 8032 §7.1, test 1.
    let rfc = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    assert!(VerifyingKey::from_jwk(&ed25519_jwk(&rfc.unwrap())).is_ok());
    for _ in 0..32 {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        assert!(VerifyingKey::from_jwk(key.public_jwk()).is_ok());
    }
}

/// Wycheproof JWK test 7.
#[test]
fn finding_11_roca_modulus_is_refused() {
    let key = jwk(json!({
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "kid-rsa-roca-sign",
        "n": ROCA_N, "e": "AQAB",
    }));
    assert_eq!(
        VerifyingKey::from_jwk(&key).unwrap_err(),
        KeyError::WeakKey("RSA modulus with the ROCA fingerprint")
    );
    // The key works as a key (its signature in the test verifies): the refusal is for its origin.
    let (input, signature) = split(ROCA_JWS);
    let public = RsaPublicKeyComponents {
        n: b64::decode(ROCA_N).unwrap(),
        e: vec![1, 0, 1],
    };
    assert!(
        public
            .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &signature)
            .is_ok()
    );
}

#[test]
fn finding_11_roca_private_key_import_is_refused() {
    assert_eq!(
        SigningKey::from_pkcs8_pem(ROCA_PKCS8).unwrap_err(),
        KeyError::WeakKey("RSA modulus with the ROCA fingerprint")
    );
}

#[test]
fn rsa_even_modulus_and_bad_exponents_are_refused() {
    let mut n = b64::decode(RSA_N).unwrap();
    let last = n.len() - 1;
    n[last] &= 0xfe;
    let even = with(rsa_jwk(), "n", json!(b64::encode(&n)));
    assert_eq!(
        VerifyingKey::from_jwk(&even).unwrap_err(),
        KeyError::InvalidJwk("RSA modulus is even")
    );
    for e in [&[1u8][..], &[2], &[0, 1], &[1, 0, 0], &[1, 0, 0, 0, 1]] {
        let key = with(rsa_jwk(), "e", json!(b64::encode(e)));
        assert!(
            matches!(VerifyingKey::from_jwk(&key), Err(KeyError::InvalidJwk(_))),
            "e = {e:?}"
        );
    }
    for e in [&[3u8][..], &[1, 0, 1]] {
        let key = with(rsa_jwk(), "e", json!(b64::encode(e)));
        assert!(VerifyingKey::from_jwk(&key).is_ok(), "e = {e:?}");
    }
}

/// A fetched set keeps its good key and skips each refused one, never failing as a whole.
#[test]
fn a_jwks_skips_refused_keys_and_keeps_the_good_one() {
    let good = SigningKey::generate(Algorithm::ES256).unwrap();
    let identity = hex::decode(SMALL_ORDER_ENCODINGS[2]).unwrap();
    let set = json!({ "keys": [
        with(rsa_jwk(), "key_ops", json!(["encrypt"])),
        with(ec_jwk(), "use", json!("enc")),
        { "kty": "OKP", "crv": "Ed25519", "kid": "small", "x": b64::encode(&identity) },
        { "kty": "RSA", "kid": "roca", "n": ROCA_N, "e": "AQAB" },
        good.public_jwk(),
    ]});
    let parsed = JwkSet::parse_lenient(set.to_string().as_bytes()).unwrap();
    let kids: Vec<_> = parsed.keys.iter().map(VerifyingKey::kid).collect();
    assert_eq!(kids, [good.kid()]);
    assert_eq!(parsed.skipped, 4);
}
