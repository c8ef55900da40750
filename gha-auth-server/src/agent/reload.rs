//! Running the reload command: argv as configured, no shell, standard input closed, and an
//! environment reduced to a few harmless variables, so neither the agent's own environment nor
//! any secret reaches it. The command reads the new values from the files.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

/// Variables passed on from the agent's environment (everything else is cleared).
const PASSED_ON: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// Why the reload command did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ReloadError {
    /// It could not be started.
    #[error("cannot start the reload command {program}: {message}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        message: String,
    },
    /// It exited with a failure.
    #[error("reload command {program} failed: {status}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: ExitStatus,
    },
    /// It ran longer than its timeout and was killed.
    #[error("reload command {program} timed out after {seconds} s and was killed")]
    TimedOut {
        /// The program.
        program: String,
        /// The timeout.
        seconds: u64,
    },
}

/// Runs `argv` (the first element is the program) and waits for it, up to `timeout`.
pub(crate) async fn run(argv: &[String], timeout: Duration) -> Result<(), ReloadError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ReloadError::Start {
            program: String::new(),
            message: "empty command".into(),
        });
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for name in PASSED_ON {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let mut child = command.spawn().map_err(|e| ReloadError::Start {
        program: program.clone(),
        message: e.kind().to_string(),
    })?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(ReloadError::Failed {
            program: program.clone(),
            status,
        }),
        Ok(Err(e)) => Err(ReloadError::Start {
            program: program.clone(),
            message: e.to_string(),
        }),
        Err(_) => {
            let _ = child.kill().await;
            Err(ReloadError::TimedOut {
                program: program.clone(),
                seconds: timeout.as_secs(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn the_command_runs_with_a_reduced_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let script = format!("env > {}", out.display());
        run(&argv(&["/bin/sh", "-c", &script]), Duration::from_secs(10))
            .await
            .unwrap();
        let env = std::fs::read_to_string(&out).unwrap();
        for line in env.lines() {
            let name = line.split('=').next().unwrap();
            // sh itself sets PWD, SHLVL and `_`.
            assert!(
                PASSED_ON.contains(&name) || ["PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
                "{line}"
            );
        }
    }

    #[tokio::test]
    async fn failures_and_timeouts_are_reported() {
        let error = run(&argv(&["/bin/sh", "-c", "exit 3"]), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("exit status: 3"), "{error}");
        let error = run(&argv(&["/nonexistent/reload"]), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("cannot start"), "{error}");
        let error = run(&argv(&["/bin/sleep", "5"]), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(error, ReloadError::TimedOut { .. }), "{error}");
    }
}
