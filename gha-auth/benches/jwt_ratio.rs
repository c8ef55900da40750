//! Full verification against one bare aws-lc-rs signature verification, measured interleaved
//! (bare, full, bare, full, …) so that load from other processes hits both alike. Prints the
//! medians and their ratio per algorithm: the number behind the "first sight of a token costs at
//! most 1.2× one bare signature verification" bar.
//!
//! ```sh
//! cargo bench -p gha-auth --bench jwt_ratio
//! ```

use std::error::Error;
use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey,
    VerificationAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use gha_auth::ManualClock;
use gha_auth::jwt::{AccessClaims, Validation, Verifier, issue};
use gha_auth::keys::{Algorithm, SigningKey};

const NOW: i64 = 1_700_000_000;
const ROUNDS: usize = 3_000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn measure(alg: Algorithm) -> Result<(Duration, Duration), Box<dyn Error>> {
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
    let verifier = Verifier::new(
        Validation::new("https://auth.gha.test", ["field-service.api"])?,
        ManualClock::at_unix(NOW).shared(),
    );
    let public = key.verifying_key();
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
    let (input, signature) = token.rsplit_once('.').ok_or("token has no signature")?;
    let signature = URL_SAFE_NO_PAD.decode(signature)?;

    let mut bare = Vec::with_capacity(ROUNDS);
    let mut full = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS + 200 {
        let start = Instant::now();
        let ok = UnparsedPublicKey::new(bare_alg, black_box(&public_key))
            .verify(black_box(input.as_bytes()), black_box(&signature))
            .is_ok();
        let bare_time = start.elapsed();
        let start = Instant::now();
        let verified = verifier
            .verify::<AccessClaims>(black_box(&token), &public)
            .is_ok();
        let full_time = start.elapsed();
        if !(ok && verified) {
            return Err("verification failed".into());
        }
        if round >= 200 {
            bare.push(bare_time);
            full.push(full_time);
        }
    }
    Ok((median(bare), median(full)))
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| alg | bare verify (median) | Verifier::verify (median) | ratio |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    for alg in Algorithm::ALL {
        let (bare, full) = measure(alg)?;
        let ratio = full.as_secs_f64() / bare.as_secs_f64();
        writeln!(out, "| {alg} | {bare:.1?} | {full:.1?} | {ratio:.2}× |")?;
    }
    Ok(())
}
