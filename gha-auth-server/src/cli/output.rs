//! Printing results: text for people, JSON with `--json`.

use std::io::Write;
use std::process::ExitCode;

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
