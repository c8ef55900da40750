//! Access-token issue and verify per algorithm, against the floor: one bare aws-lc-rs signature
//! verification of the same token (`verify_signature_bare`).
//!
//! ```sh
//! cargo bench -p gha-auth --bench jwt -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use aws_lc_rs::signature::UnparsedPublicKey;
use criterion::{Criterion, criterion_group, criterion_main};
use gha_auth::jwt::{AccessClaims, issue, parse_header};
use gha_auth::keys::Algorithm;

mod common;
use common::fixture;

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
