//! `promtool check metrics`: Prometheus's own linter for an exposition (HELP text on every
//! family, names, units), from Debian's prometheus package unpacked into
//! `<workspace>/.tools/prometheus` by `scripts/test-deploy`, or `GHA_AUTH_PROMTOOL`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util::workspace_root;

/// Where promtool is, or an error that says how to get it.
fn promtool() -> Result<PathBuf> {
    let path = std::env::var_os("GHA_AUTH_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/prometheus/promtool"));
    if !path.exists() {
        bail!(
            "{} is missing: run scripts/test (its deployment step unpacks promtool into \
             .tools/prometheus) or set GHA_AUTH_PROMTOOL",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `promtool check metrics` on `exposition` (the text of a `/metrics` answer); an error
/// carries promtool's findings.
pub fn promtool_check_metrics(exposition: &str) -> Result<()> {
    let mut child = Command::new(promtool()?)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start promtool")?;
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(exposition.as_bytes())
        .context("write to promtool")?;
    let output = child.wait_with_output().context("wait for promtool")?;
    if !output.status.success() {
        bail!(
            "promtool check metrics exited {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
