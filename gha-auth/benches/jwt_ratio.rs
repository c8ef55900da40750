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

use aws_lc_rs::signature::UnparsedPublicKey;
use gha_auth::jwt::AccessClaims;
use gha_auth::keys::Algorithm;

mod common;
use common::fixture;

const ROUNDS: usize = 3_000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn measure(alg: Algorithm) -> Result<(Duration, Duration), Box<dyn Error>> {
    let f = fixture(alg)?;
    let public = f.key.verifying_key();

    let mut bare = Vec::with_capacity(ROUNDS);
    let mut full = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS + 200 {
        let start = Instant::now();
        let ok = UnparsedPublicKey::new(f.bare_alg, black_box(&f.public_key))
            .verify(black_box(&f.signing_input), black_box(&f.signature))
            .is_ok();
        let bare_time = start.elapsed();
        let start = Instant::now();
        let verified = f
            .verifier
            .verify::<AccessClaims>(black_box(&f.token), &public)
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
