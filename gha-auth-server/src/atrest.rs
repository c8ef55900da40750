//! Secrets at rest: the master key file and AES-256-GCM sealing.
//!
//! The master key is 32 random bytes in a file (mode 0600) that is generated on first start,
//! by whichever process gets there first (server or admin command): it is written to a temporary
//! file and hard-linked into place, so two processes starting at once agree on one key. Signing
//! keys and the pepper are sealed with it before they reach the store; the name of each document
//! is bound in as associated data, so a sealed document cannot be swapped for another.
//!
//! Replicas that share one PostgreSQL store without Vault must share the master key file too.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gha_auth::SecretBytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
const FILE_HEADER: &str = "gha-auth master key v1";
const SEAL_VERSION: u8 = 1;

/// The master key could not be loaded or a document could not be sealed or opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AtRestError {
    /// Reading or creating the master key file failed.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The master key file is readable by other users.
    #[error("master key file {path} is accessible to other users (mode {mode:o}); chmod 600 it")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The master key file is not in the expected format.
    #[error("master key file {path} is malformed")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The system random source failed.
    #[error("random source failed")]
    Randomness,
    /// A sealed document is corrupt, or was sealed with another master key.
    #[error("cannot open sealed document {name:?}: corrupt, or sealed with another master key")]
    Open {
        /// The document name.
        name: String,
    },
}

/// The AES-256-GCM master key. Never printed, wiped on drop (inside ring).
pub struct MasterKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Loads the key from `path`, creating it (mode 0600, parent directories 0700) if missing.
    pub fn load_or_create(path: &Path) -> Result<Self, AtRestError> {
        let io = |source| AtRestError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir).map_err(io)?;
                }
                let rng = SystemRandom::new();
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                rng.fill(bytes.as_mut_slice())
                    .map_err(|_| AtRestError::Randomness)?;
                write_new_private_file(path, &encode_file(bytes.as_slice()), &rng).map_err(io)?;
                // Whoever won the race, everyone reads the file that is now in place.
                Self::load(path)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Loads an existing key file; refuses one that other users can read.
    pub fn load(path: &Path) -> Result<Self, AtRestError> {
        let io = |source| AtRestError::Io {
            path: path.to_owned(),
            source,
        };
        check_permissions(path)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let malformed = || AtRestError::Malformed {
            path: path.to_owned(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(FILE_HEADER) {
            return Err(malformed());
        }
        let encoded = lines.next().ok_or_else(malformed)?;
        let bytes = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| malformed())?);
        Self::from_bytes(&bytes).ok_or_else(malformed)
    }

    /// A key from raw bytes (32); `None` for another length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts `plaintext` as document `name`: base64 of version byte, nonce and ciphertext.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<String, AtRestError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| AtRestError::Randomness)?;
        let mut buffer = Zeroizing::new(plaintext.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut *buffer,
            )
            .map_err(|_| AtRestError::Randomness)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buffer.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts a document sealed by [`MasterKey::seal`] under the same `name`.
    pub fn open(&self, name: &str, sealed: &str) -> Result<SecretBytes, AtRestError> {
        let fail = || AtRestError::Open {
            name: name.to_owned(),
        };
        let raw = STANDARD.decode(sealed.trim()).map_err(|_| fail())?;
        let (version, rest) = raw.split_first().ok_or_else(fail)?;
        if *version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buffer)
            .map_err(|_| fail())?;
        Ok(SecretBytes::new(plaintext.to_vec()))
    }
}

fn encode_file(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(format!("{FILE_HEADER}\n{}\n", STANDARD.encode(bytes)))
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), AtRestError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| AtRestError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AtRestError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), AtRestError> {
    Ok(())
}

/// Creates `dir` (and parents); a directory created here gets mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `contents` to `path` with mode 0600 only if `path` does not exist yet: the data goes
/// to a temporary file that is then hard-linked into place (atomic, fails if present).
fn write_new_private_file(path: &Path, contents: &str, rng: &SystemRandom) -> std::io::Result<()> {
    let mut suffix = [0u8; 8];
    rng.fill(&mut suffix)
        .map_err(|_| std::io::Error::other("random source failed"))?;
    let tmp = path.with_extension(format!("tmp-{}", hex::encode(suffix)));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            // Another process created it first; use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_private_permissions_and_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/master.key");
        let key = MasterKey::load_or_create(&path).unwrap();
        let sealed = key.seal("pepper", b"top secret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(
            again.open("pepper", &sealed).unwrap().expose(),
            b"top secret"
        );
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temp left"
        );
    }

    #[test]
    fn concurrent_creation_agrees_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let key = MasterKey::load_or_create(&path).unwrap();
                    key.seal("doc", b"x").unwrap()
                })
            })
            .collect();
        let sealed: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let key = MasterKey::load(&path).unwrap();
        for s in sealed {
            assert_eq!(key.open("doc", &s).unwrap().expose(), b"x");
        }
    }

    #[test]
    fn documents_are_bound_to_their_name_and_key() {
        let key = MasterKey::from_bytes(&[7; 32]).unwrap();
        let other = MasterKey::from_bytes(&[8; 32]).unwrap();
        let sealed = key.seal("signing-keys", b"payload").unwrap();
        assert_ne!(
            sealed,
            key.seal("signing-keys", b"payload").unwrap(),
            "fresh nonce"
        );
        assert!(key.open("pepper", &sealed).is_err());
        assert!(other.open("signing-keys", &sealed).is_err());
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(
            key.open("signing-keys", &STANDARD.encode(tampered))
                .is_err()
        );
        assert!(key.open("signing-keys", "!!!").is_err());
        assert!(key.open("signing-keys", "").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_world_readable_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            MasterKey::load(&path),
            Err(AtRestError::Permissions { .. })
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_bytes(&[1; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
    }
}
