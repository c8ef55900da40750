//! The command line's terminal: results printed as text for people or JSON with `--json`, and
//! secrets read from a prompt without echo or from standard input (never from argv).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use gha_auth::SecretString;
use serde::Serialize;

/// Where command results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Text output, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether results are JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as JSON, or `text` for people.
    pub fn print<T: Serialize>(&self, value: &T, text: &str) {
        let line = if self.json {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned())
        } else {
            text.trim_end().to_owned()
        };
        let mut stdout = std::io::stdout().lock();
        // A closed pipe is not worth a panic.
        let _ = writeln!(stdout, "{line}");
    }

    /// Reports a failure on standard error (JSON `{"error": …}` with `--json`); exit status 1.
    pub fn failure(&self, message: &str) -> ExitCode {
        let mut stderr = std::io::stderr().lock();
        if self.json {
            let _ = writeln!(stderr, "{}", serde_json::json!({ "error": message }));
        } else {
            let _ = writeln!(stderr, "error: {message}");
        }
        ExitCode::FAILURE
    }
}

/// Reads a secret: `label` as a prompt without echo on a terminal, else the first line of stdin.
pub(crate) fn read_secret(label: &str, confirm: bool) -> Result<SecretString, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = prompt(label)?;
        if confirm {
            let second = prompt(&format!("Repeat {}", label.to_lowercase()))?;
            if first.expose() != second.expose() {
                return Err("the two entries differ".into());
            }
        }
        return Ok(first);
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the secret from standard input: {e}"))?;
    Ok(SecretString::new(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

fn prompt(text: &str) -> Result<SecretString, String> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{text}");
    let _ = stderr.flush();
    let echo_off = set_echo(false);
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
    }
    let _ = writeln!(stderr);
    read.map_err(|e| format!("cannot read the secret: {e}"))?;
    Ok(SecretString::new(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// Turns terminal echo off or on with `stty`; false if that is not possible.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}
