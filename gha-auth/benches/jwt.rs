//! Access-token issue and verify per algorithm, against the floor: one bare aws-lc-rs signature
//! verification of the same token (`verify_signature_bare`).
//!
//! ```sh
//! cargo bench -p gha-auth --bench jwt -- --warm-up-time 1 --measurement-time 3
//! ```

use std::error::Error;
use std::hint::black_box;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey,
    VerificationAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use criterion::{Criterion, criterion_group, criterion_main};
use gha_auth::ManualClock;
use gha_auth::jwt::{AccessClaims, Validation, Verifier, issue, parse_header};
use gha_auth::keys::{Algorithm, SigningKey};

const NOW: i64 = 1_700_000_000;

struct Fixture {
    key: SigningKey,
    claims: AccessClaims,
    token: String,
    verifier: Verifier,
    bare_alg: &'static dyn VerificationAlgorithm,
    public_key: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn fixture(alg: Algorithm) -> Result<Fixture, Box<dyn Error>> {
    let key = SigningKey::generate(alg)?;
    let claims = AccessClaims::new(
        "https://auth.gha.test",
        "svc-ap-automation",
        "field-service.api",
        "svc-ap-automation",
        NOW,
        TimeDelta::minutes(10),
    )?
    .with_scopes(["orders.read", "orders.write"]);
    let token = issue(&key, &claims)?;
    let validation = Validation::new("https://auth.gha.test", ["field-service.api"])?;
    let verifier = Verifier::new(validation, ManualClock::at_unix(NOW).shared());
    verifier.verify::<AccessClaims>(&token, &key.verifying_key())?;

    // The raw public key as aws-lc-rs takes it, straight from the private key.
    let der = key.to_pkcs8_der();
    let (bare_alg, public_key): (&'static dyn VerificationAlgorithm, Vec<u8>) = match alg {
        Algorithm::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.expose())?;
            (
                &ECDSA_P256_SHA256_FIXED,
                pair.public_key().as_ref().to_vec(),
            )
        }
        Algorithm::EdDSA => (
            &ED25519,
            Ed25519KeyPair::from_pkcs8(der.expose())?
                .public_key()
                .as_ref()
                .to_vec(),
        ),
        Algorithm::RS256 => (
            &RSA_PKCS1_2048_8192_SHA256,
            RsaKeyPair::from_pkcs8(der.expose())?
                .public_key()
                .as_ref()
                .to_vec(),
        ),
    };
    let (signing_input, signature) = token.rsplit_once('.').ok_or("token has no signature")?;
    let signature = URL_SAFE_NO_PAD.decode(signature)?;
    UnparsedPublicKey::new(bare_alg, &public_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| "bare verification failed")?;
    let signing_input = signing_input.as_bytes().to_vec();
    Ok(Fixture {
        key,
        claims,
        token,
        verifier,
        bare_alg,
        public_key,
        signing_input,
        signature,
    })
}

fn bench_jwt(c: &mut Criterion) {
    for alg in Algorithm::ALL {
        let f = match fixture(alg) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipping {alg}: {e}");
                continue;
            }
        };
        let public = f.key.verifying_key();
        let mut group = c.benchmark_group(alg.name());
        group.bench_function("issue", |b| {
            b.iter(|| issue(black_box(&f.key), black_box(&f.claims)))
        });
        group.bench_function("verify", |b| {
            b.iter(|| {
                f.verifier
                    .verify::<AccessClaims>(black_box(&f.token), &public)
            })
        });
        group.bench_function("parse_header", |b| {
            b.iter(|| parse_header(black_box(&f.token)))
        });
        group.bench_function("verify_signature_bare", |b| {
            b.iter(|| {
                UnparsedPublicKey::new(f.bare_alg, black_box(&f.public_key))
                    .verify(black_box(&f.signing_input), black_box(&f.signature))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_jwt);
criterion_main!(benches);
