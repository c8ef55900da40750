//! Writing a file atomically with its mode (0600 for secrets, 0644 for the public edge keys): a
//! temporary file in the same directory, created with that mode (a secret is never readable by
//! others, not even for a moment), written, flushed to disk, renamed over the target, and the
//! directory flushed so the rename survives a crash. Readers see the old content or the new,
//! never half of it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

/// Mode of every secret file the agent writes.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Mode of the edge key slots: public keys, read by HAProxy's user.
pub(crate) const PUBLIC_FILE_MODE: u32 = 0o644;

/// Distinguishes temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `content` to `path` unless the file already holds exactly it with mode 0600; returns
/// whether it wrote.
pub(crate) fn write_if_changed(path: &Path, content: &[u8]) -> std::io::Result<bool> {
    write_if_changed_with_mode(path, content, FILE_MODE)
}

/// Writes `content` to `path` with `mode` unless the file already holds exactly it with that
/// mode; returns whether it wrote.
pub(crate) fn write_if_changed_with_mode(
    path: &Path,
    content: &[u8],
    mode: u32,
) -> std::io::Result<bool> {
    if unchanged(path, content, mode) {
        return Ok(false);
    }
    let dir = path.parent().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no directory")
    })?;
    let temp = temp_path(path);
    let written = write_new(&temp, content, mode).and_then(|()| std::fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(true)
}

fn unchanged(path: &Path, content: &[u8], mode: u32) -> bool {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !metadata.is_file() || metadata.permissions().mode() & 0o777 != mode {
        return false;
    }
    if metadata.len() != content.len() as u64 {
        return false;
    }
    std::fs::read(path)
        .map(Zeroizing::new)
        .is_ok_and(|existing| existing.as_slice() == content)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let serial = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{serial}.tmp", std::process::id()))
}

fn write_new(temp: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temp)?;
    // The umask may have cleared bits of the mode, never added any; set it exactly anyway.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(content)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_0600_only_when_the_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        assert!(write_if_changed(&path, b"one").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE);
        assert!(!write_if_changed(&path, b"one").unwrap(), "same content");
        assert!(write_if_changed(&path, b"two").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        // A file someone made readable is rewritten with the right mode.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(write_if_changed(&path, b"two").unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    }

    #[test]
    fn public_files_are_written_0644_and_an_empty_content_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("active.pem");
        assert!(write_if_changed_with_mode(&path, b"", PUBLIC_FILE_MODE).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, PUBLIC_FILE_MODE);
        assert!(!write_if_changed_with_mode(&path, b"", PUBLIC_FILE_MODE).unwrap());
        assert!(write_if_changed_with_mode(&path, b"key", PUBLIC_FILE_MODE).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"key");
    }

    #[test]
    fn a_missing_directory_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("secret");
        assert!(write_if_changed(&path, b"x").is_err());
        assert!(!path.exists());
    }
}
