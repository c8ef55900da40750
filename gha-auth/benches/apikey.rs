//! The `gha?_` secret format: parsing a presented secret (shape and CRC32 checksum, done before
//! any lookup), keyed hashing for storage (HMAC-SHA256 under the pepper), generation and
//! deterministic derivation (refresh-token successors).
//!
//! ```sh
//! cargo bench -p gha-auth --bench apikey -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gha_auth::apikey::{ApiKey, Pepper, SecretKind};

fn bench(c: &mut Criterion) {
    let Ok(key) = ApiKey::generate(SecretKind::ClientSecret) else {
        return;
    };
    let Ok(pepper) = Pepper::generate() else {
        return;
    };
    let presented = key.expose().to_owned();
    let mut group = c.benchmark_group("apikey");
    group.bench_function("parse", |b| b.iter(|| ApiKey::parse(black_box(&presented))));
    group.bench_function("parse_and_hash", |b| {
        b.iter(|| ApiKey::parse(black_box(&presented)).map(|key| pepper.hash(&key)))
    });
    group.bench_function("generate", |b| {
        b.iter(|| ApiKey::generate(black_box(SecretKind::RefreshToken)))
    });
    group.bench_function("derive", |b| {
        b.iter(|| {
            ApiKey::derive(
                SecretKind::RefreshToken,
                &pepper,
                black_box(b"family:token"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
