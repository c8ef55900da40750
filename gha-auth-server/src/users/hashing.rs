//! Argon2id hashing and verification into reused working memory.
//!
//! Argon2's own `hash_password` allocates its working memory (`m_cost` KiB, 19 MiB by default)
//! on every call and frees it afterwards. With glibc, memory freed on one of the runtime's many
//! blocking threads stays in that thread's arena, so concurrent logins on ever new threads grew
//! the process by one working set per thread, and it stayed. Here the working sets are kept in
//! one pool and handed to whichever thread hashes: the process holds at most as many as ran at
//! once, which the hash budget in [`super`] bounds.

use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{Output, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use ring::rand::{SecureRandom, SystemRandom};

use super::UserError;

/// Working sets not in use; one per hash that ran at the same time, at most.
static FREE_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs `f` with `count` blocks of working memory from the pool, returning them afterwards.
fn with_memory<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let reused = FREE_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let mut blocks = reused.unwrap_or_default();
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
    let result = f(&mut blocks[..count]);
    FREE_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(blocks);
    result
}

/// Hashes `password` like [`hash_password`], then gives the pooled working memory back: for a
/// hash made once at start-up, so that a server that serves no password login holds none (a
/// 19 MiB working set at the default cost). Hashes running meanwhile keep theirs.
pub(crate) fn hash_password_once(params: &Params, password: &[u8]) -> Result<String, UserError> {
    let hash = hash_password(params, password);
    FREE_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    hash
}

/// Computes the Argon2 output for `password` and `salt` into `out`.
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> bool {
    with_memory(params.block_count(), |memory| {
        argon2
            .hash_password_into_with_memory(password, salt, out, memory)
            .is_ok()
    })
}

/// Hashes `password` with Argon2id at `params` and a fresh 16-byte salt; a PHC string.
pub(crate) fn hash_password(params: &Params, password: &[u8]) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| UserError::Hash("no randomness".into()))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    if !compute(&argon2, params, password, &salt, &mut out) {
        return Err(UserError::Hash("argon2 refused its parameters".into()));
    }
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.to_string()))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|e: argon2::password_hash::Error| UserError::Hash(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| UserError::Hash(e.to_string()))?),
    };
    Ok(hash.to_string())
}

/// Checks `password` against a PHC string (its own algorithm, version and parameters apply),
/// comparing the outputs in constant time. False for anything unparseable.
pub(crate) fn verify_password(hash: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    compute(&argon2, &params, password, salt, &mut out)
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    fn small() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let hash = hash_password(&small(), b"correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(verify_password(&hash, b"correct horse"));
        assert!(!verify_password(&hash, b"correct horsE"));
        assert!(!verify_password("not a hash", b"x"));
        assert!(!verify_password(
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ",
            b"x"
        ));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() {
        // Hashes stored before the pool was introduced still verify, and the other way round.
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, small())
            .hash_password(
                b"a typical password",
                &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap(),
            )
            .unwrap()
            .to_string();
        assert!(verify_password(&theirs, b"a typical password"));
        assert!(!verify_password(&theirs, b"a typical passworD"));
        let ours = hash_password(&small(), b"a typical password").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"a typical password", &parsed)
                .is_ok()
        );
        // Other algorithms and versions in the PHC string are honoured, not assumed.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, small())
            .hash_password(b"old", &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap())
            .unwrap()
            .to_string();
        assert!(verify_password(&argon2i, b"old"));
        assert!(!verify_password(&argon2i, b"new"));
    }

    #[test]
    fn a_hash_made_once_leaves_no_working_memory_behind() {
        let hash = hash_password_once(&small(), b"pw pw pw pw").unwrap();
        assert!(verify_password(&hash, b"pw pw pw pw"));
        // The verification pooled a working set; a hash made once releases every idle one.
        hash_password_once(&small(), b"pw pw pw pw").unwrap();
        assert!(FREE_MEMORY.lock().unwrap().is_empty());
    }

    #[test]
    fn working_memory_is_reused_not_reallocated() {
        // Sequential hashes leave one working set in the pool, not one per hash.
        for _ in 0..4 {
            hash_password(&small(), b"pw pw pw pw").unwrap();
        }
        let pooled = FREE_MEMORY.lock().unwrap();
        assert!(!pooled.is_empty());
        assert!(
            pooled
                .iter()
                .all(|blocks| blocks.len() >= small().block_count())
        );
    }
}
