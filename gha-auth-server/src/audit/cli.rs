//! `gha-auth audit verify`.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;

use crate::store::Store;
use crate::terminal::Output;

/// `gha-auth audit …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum AuditCommand {
    /// Recompute the hash chain; exit 1 if it is broken.
    Verify,
}

/// Runs an `audit` command on `store`.
pub(crate) async fn run(
    command: &AuditCommand,
    store: &Store,
    out: &Output,
) -> Result<ExitCode, String> {
    let AuditCommand::Verify = command;
    let report = super::verify(store).await.map_err(|e| e.to_string())?;
    Ok(print_report(&report, out))
}

/// Prints what `audit verify` found (here or through `--server`); exit 1 when the chain is
/// broken.
pub(crate) fn print_report(report: &super::VerifyReport, out: &Output) -> ExitCode {
    let mut text = String::new();
    if report.ok() {
        let _ = write!(
            text,
            "OK: {} audit events, chain intact (head {} {})",
            report.rows,
            report.head_seq.unwrap_or(0),
            report.head_hash.as_deref().unwrap_or("-")
        );
    } else {
        let _ = writeln!(
            text,
            "BROKEN: the audit chain has {} problem(s):",
            report.problems.len()
        );
        for problem in &report.problems {
            let _ = writeln!(text, "  - {problem}");
        }
    }
    out.print(report, &text);
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
