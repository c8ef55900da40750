//! `gha-auth config check`: every problem, or OK. Reads but never creates anything.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;

use crate::atrest::MasterKey;
use crate::config::Config;
use crate::keys::load_import_pem;
use crate::terminal::Output;

/// Checks `config` and the files it names.
pub(super) fn run(config: &Config, out: &Output) -> ExitCode {
    let mut problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
    if let Some(path) = &config.keys.import_pem
        && let Err(e) = load_import_pem(path, config.dev_mode)
    {
        problems.push(format!("keys.import_pem: {e}"));
    }
    let master = config.master_key_path();
    if master.exists()
        && let Err(e) = MasterKey::load(&master)
    {
        problems.push(format!("keys.master_key_file: {e}"));
    }
    let warnings = config.warnings();
    let mut warning_text = String::new();
    for warning in warnings {
        let _ = writeln!(warning_text, "warning: {warning}");
    }
    if problems.is_empty() {
        out.print(
            &json!({
                "ok": true,
                "store": crate::config::redact_url(&config.store_url()),
                "warnings": warnings,
            }),
            &format!("{warning_text}OK: configuration is valid"),
        );
        ExitCode::SUCCESS
    } else {
        let mut text = format!("{warning_text}configuration problems:\n");
        for problem in &problems {
            let _ = writeln!(text, "  - {problem}");
        }
        out.print(
            &json!({"ok": false, "problems": problems, "warnings": warnings}),
            &text,
        );
        ExitCode::FAILURE
    }
}
