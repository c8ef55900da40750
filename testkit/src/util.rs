//! Small helpers shared by the fixtures: ports, randomness, paths, stale-fixture sweeping.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The workspace root (the directory holding the root `Cargo.toml`).
///
/// Derived from this crate's manifest directory at compile time, so it works from any cwd.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process can in principle take it first:
/// fixtures that bind it retry with a new port when that happens.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A free port `p` such that `p + 1` is free too (OpenBao's dev listener uses `p + 1` for its
/// cluster address).
pub(crate) fn free_port_pair() -> Result<u16> {
    for _ in 0..100 {
        let first = TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
        let port = first.local_addr()?.port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", next)).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no pair of adjacent free ports on 127.0.0.1")
}

/// `bytes` random bytes from the OS, hex-encoded (`2 * bytes` characters).
pub fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Last `lines` lines of a (log) file, for error messages. Never fails.
pub(crate) fn file_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("<could not read {}: {e}>", path.display()),
    }
}

/// Search `PATH` for an executable called `name`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Name of the file, inside every fixture's temporary directory, holding the pid of the test
/// process that owns it.
pub(crate) const OWNER_FILE: &str = "owner.pid";

/// Creates a fixture directory `<tmp>/<prefix>XXXX` and records the current process as owner.
pub(crate) fn fixture_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temporary directory")?;
    std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
        .context("writing the owner pid file")?;
    Ok(dir)
}

/// Fixture directories with `prefix` whose owning test process is gone (killed before its
/// `Drop` ran, e.g. by a test timeout) and that were last modified at least `min_age` ago (tools
/// the dead owner started, like `initdb`, may still be working in them for a moment). Best
/// effort: unreadable entries are skipped.
pub(crate) fn orphaned_fixture_dirs(prefix: &str, min_age: Duration) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .filter(|dir| {
            std::fs::metadata(dir)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified.elapsed().unwrap_or_default() >= min_age)
        })
        .filter(|dir| {
            std::fs::read_to_string(dir.join(OWNER_FILE))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .is_some_and(|owner| !pid_alive(owner))
        })
        .collect()
}

/// `kill -KILL pid`, only if `/proc/<pid>/cmdline` mentions `must_contain` (guards against pid
/// reuse). Best effort.
pub(crate) fn kill_if_cmdline_contains(pid: u32, must_contain: &str) {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    if String::from_utf8_lossy(&cmdline).contains(must_contain) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn random_hex_is_hex_and_differs() {
        let a = random_hex(16).unwrap();
        let b = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
        let pair = free_port_pair().unwrap();
        assert!(TcpListener::bind(("127.0.0.1", pair)).is_ok());
        assert!(TcpListener::bind(("127.0.0.1", pair + 1)).is_ok());
    }

    #[test]
    fn fixture_dirs_of_live_owners_are_not_orphans() {
        let dir = fixture_dir("gha-auth-unit-").unwrap();
        let path = dir.path().to_path_buf();
        assert!(!orphaned_fixture_dirs("gha-auth-unit-", Duration::ZERO).contains(&path));
        // A dead owner (pid far above pid_max) makes it an orphan, once old enough.
        std::fs::write(dir.path().join(OWNER_FILE), "4294967290").unwrap();
        assert!(orphaned_fixture_dirs("gha-auth-unit-", Duration::ZERO).contains(&path));
        let hour = Duration::from_secs(3600);
        assert!(!orphaned_fixture_dirs("gha-auth-unit-", hour).contains(&path));
    }
}
