//! The `gha-auth` binary as an operator uses it: admin commands, `--json`, exit codes, and
//! `serve` with a real signal, checked for readiness and for secrets in its logs.
//!
//! Each test that acts on the store also runs through `--server` against a running server (a
//! `_through_the_server` twin, same assertions), and
//! `commands_print_the_same_on_the_store_and_through_the_server` compares the two outputs of
//! every reading command on one store. These stay local only: the `config check` tests
//! and `unknown_variables_…` (they load a configuration; nothing on a store),
//! `serve_is_ready_fast_…` and `healthcheck_…` (they test `serve` and the container's probe),
//! `an_unwritable_data_directory_…` and `reading_commands_never_create_a_store_…` (the local data
//! directory and store: through the server there is none on the operator's side, which
//! `commands_work_through_the_admin_api_…` checks).

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gha-auth");

fn gha_auth(data: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("GHA_AUTH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .env("USER", "operator")
        .arg("--data-dir")
        .arg(data)
        .args(args);
    command.output().expect("binary runs")
}

/// Runs `gha-auth serve` on `data` (with `env`) until `/HealthCheck` answers, then stops it
/// with SIGTERM and waits.
fn serve_until_ready(data: &Path, env: &[(&str, &str)]) {
    let port = gha_auth_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("GHA_AUTH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let mut child = command
        .envs(env.iter().copied())
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        while http
            .get(format!("http://{listen}/HealthCheck"))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not ready in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(output),
        stderr(output)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// A key schedule the project's own middleware cannot follow (it refreshes the JWKS at most every
/// 30 s and refetches for an unknown kid at most every 30 s) is refused, saying why.
#[test]
fn config_check_refuses_key_schedules_the_middleware_cannot_follow() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    let check = |publish_ahead: &str, extra: &str| {
        std::fs::write(
            &file,
            format!(
                "[keys]\njwks_max_age = \"1s\"\nrefresh_interval = \"2s\"\n\
                 publish_ahead = \"{publish_ahead}\"\n{extra}"
            ),
        )
        .unwrap();
        gha_auth(
            dir.path(),
            &["--config", file.to_str().unwrap(), "config", "check"],
        )
    };
    // 2 s (replicas) + 30 s (the middleware's shortest refresh) + 30 s (unknown-kid wait) + 10 s.
    let short = check("71s", "");
    assert_eq!(short.status.code(), Some(1), "{}", stdout(&short));
    let text = stdout(&short);
    assert!(text.contains("keys.publish_ahead:"), "{text}");
    assert!(text.contains("unknown kid"), "{text}");
    assert!(text.contains("refuse tokens"), "{text}");
    let enough = check("72s", "");
    assert!(enough.status.success(), "{}", stdout(&enough));
    // Explicitly off (verifiers that refresh faster).
    let off = check("4s", "check_verifier_bounds = false\n");
    assert!(off.status.success(), "{}", stdout(&off));
}

#[test]
fn config_check_reports_ok_or_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ok = gha_auth(dir.path(), &["config", "check"]);
    assert!(ok.status.success());
    assert!(stdout(&ok).contains("OK"), "{}", stdout(&ok));
    assert!(
        !dir.path().join("master.key").exists(),
        "config check creates nothing"
    );

    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:8700\"\n[keys]\npublish_ahead = \"1m\"\n",
    )
    .unwrap();
    let bad = gha_auth(
        dir.path(),
        &["--config", file.to_str().unwrap(), "config", "check"],
    );
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(
        text.contains("listen:") && text.contains("keys.publish_ahead:"),
        "{text}"
    );

    std::fs::write(&file, "listen = \"127.0.0.1:8700\"\nunknown_key = 1\n").unwrap();
    let unknown = gha_auth(
        dir.path(),
        &["--config", file.to_str().unwrap(), "config", "check"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("unknown field"),
        "{}",
        stderr(&unknown)
    );

    let as_json = gha_auth(
        dir.path(),
        &["--config", "/nonexistent.toml", "--json", "config", "check"],
    );
    assert_eq!(as_json.status.code(), Some(1));
    let error: Value = serde_json::from_str(stderr(&as_json).trim()).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent.toml")
    );
}

#[test]
fn client_key_and_audit_commands_work_on_one_store() {
    client_key_and_audit_commands_via(false);
}

/// The same commands through `--server`: the admin API answers with the same JSON and text.
#[test]
fn client_key_and_audit_commands_work_through_the_server() {
    client_key_and_audit_commands_via(true);
}

fn client_key_and_audit_commands_via(through_server: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served =
        through_server.then(|| Served::start(&data, &[("GHA_AUTH_KEYS_ALGORITHM", "EdDSA")]));
    // Every call through the server is one more audit row (`admin.api_call`); clap's usage
    // errors never reach it.
    let calls = std::cell::Cell::new(0_u64);
    let gha_auth = |data: &Path, args: &[&str]| match &served {
        Some(served) => {
            let output = served.run(data, args);
            if output.status.code() != Some(2) {
                calls.set(calls.get() + 1);
            }
            output
        }
        None => gha_auth(data, args),
    };

    let added = gha_auth(
        &data,
        &[
            "clients",
            "add",
            "svc-sync",
            "--grant",
            "client_credentials",
            "--scope",
            "orders:read",
            "--scope",
            "orders:write",
            "--audience",
            "mfs.api",
            "--tenant",
            "acme",
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let text = stdout(&added);
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret is printed once")
        .to_owned();
    assert!(secret.starts_with("ghac_"));
    assert!(text.contains("shown only once"));

    let list = json(&gha_auth(&data, &["--json", "clients", "list"]));
    // Through the server, its admin client `ops` is listed too.
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "svc-sync")
        .unwrap_or_else(|| panic!("svc-sync listed: {list}"));
    assert_eq!(listed["grants"][0], "client_credentials");
    assert_eq!(listed["auth_method"], "client_secret");
    assert!(
        !list.to_string().contains(&secret),
        "listing never shows a secret"
    );
    let show = gha_auth(&data, &["clients", "show", "svc-sync"]);
    assert!(
        stdout(&show).contains("audiences:    mfs.api"),
        "{}",
        stdout(&show)
    );
    assert!(!stdout(&show).contains(&secret));

    let rotated = json(&gha_auth(
        &data,
        &[
            "--json",
            "clients",
            "rotate-secret",
            "svc-sync",
            "--grace",
            "1h",
        ],
    ));
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    assert_eq!(rotated["previous_valid_for_secs"], 3600);
    let show = json(&gha_auth(&data, &["--json", "clients", "show", "svc-sync"]));
    assert!(show["previous_secret_valid_until"].is_i64());

    let disabled = json(&gha_auth(
        &data,
        &["--json", "clients", "disable", "svc-sync"],
    ));
    assert_eq!(disabled["disabled"], true);
    let missing = gha_auth(&data, &["clients", "show", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no client"));
    let invalid = gha_auth(
        &data,
        &[
            "clients",
            "add",
            "bad id",
            "--grant",
            "client_credentials",
            "--audience",
            "a",
        ],
    );
    assert_eq!(invalid.status.code(), Some(1));
    let usage = gha_auth(&data, &["clients", "add", "x"]);
    assert_eq!(usage.status.code(), Some(2), "clap usage error");

    // Admin commands never make the first signing key: the server does, with its configuration.
    // (Through the server, it made it when it started.)
    if !through_server {
        let before = gha_auth(&data, &["keys", "list"]);
        assert_eq!(before.status.code(), Some(1));
        assert!(
            stderr(&before).contains("no signing keys yet"),
            "{}",
            stderr(&before)
        );
        serve_until_ready(&data, &[("GHA_AUTH_KEYS_ALGORITHM", "EdDSA")]);
    }
    let keys = json(&gha_auth(&data, &["--json", "keys", "list"]));
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["state"], "active");
    assert_eq!(
        keys[0]["alg"], "EdDSA",
        "the server's configuration decides"
    );
    let first = keys[0]["kid"].as_str().unwrap().to_owned();
    let rotate = json(&gha_auth(&data, &["--json", "keys", "rotate"]));
    let next = rotate["kid"].as_str().unwrap().to_owned();
    let again = gha_auth(&data, &["keys", "rotate"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already published"),
        "{}",
        stderr(&again)
    );
    let keys = json(&gha_auth(&data, &["--json", "keys", "list"]));
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert_eq!(keys[0]["kid"], next.as_str());
    assert_eq!(keys[0]["state"], "next");
    let emergency = json(&gha_auth(
        &data,
        &["--json", "keys", "rotate", "--emergency"],
    ));
    let removed: Vec<&str> = emergency["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(removed.contains(&first.as_str()) && removed.contains(&next.as_str()));

    // Through the server: also its admin client `ops`, and one row per call before this one.
    let server_rows = if through_server { 1 + calls.get() } else { 0 };
    let verify = json(&gha_auth(&data, &["--json", "audit", "verify"]));
    assert_eq!(verify["problems"], serde_json::json!([]));
    assert_eq!(
        verify["rows"],
        8 + server_rows,
        "add, rotate-secret, disable (+ its revocation), the server's first key and its start, \
         rotate, emergency: {verify}"
    );
    let text = stdout(&gha_auth(&data, &["audit", "verify"]));
    assert!(text.starts_with("OK:"), "{text}");

    // Tamper with one row: verify fails with exit 1 and says which.
    let db = data.join("gha-auth.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Behind the server's back, as someone with the database file could.
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let broken = gha_auth(&data, &["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        stdout(&broken).contains("row 2 was changed"),
        "{}",
        stdout(&broken)
    );
}

#[test]
fn serve_is_ready_fast_stops_on_sigterm_and_never_logs_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let added = gha_auth(
        &data,
        &[
            "--json",
            "clients",
            "add",
            "svc",
            "--grant",
            "client_credentials",
            "--audience",
            "mfs.api",
        ],
    );
    let secret = json(&added)["client_secret"].as_str().unwrap().to_owned();

    let port = gha_auth_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let log = dir.path().join("serve.log");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .env_remove("RUST_LOG")
        .env("GHA_AUTH_LOG_LEVEL", "debug")
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &listen,
            "serve",
        ])
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://{listen}");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        loop {
            if let Ok(response) = http.get(format!("{base}/HealthCheck")).send().await {
                assert!(response.status().is_success());
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not ready in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!(
            "gha-auth serve ready after {:?} (debug build, includes process start)",
            started.elapsed()
        );
        let token = http
            .post(format!("{base}/oauth2/token"))
            .basic_auth("svc", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(token.status(), 200);
        let token: Value = token.json().await.unwrap();
        let access_token = token["access_token"].as_str().unwrap().to_owned();
        let wrong = format!("{}x", &secret[..secret.len() - 1]);
        for (id, secret) in [("svc", wrong.as_str()), ("other", secret.as_str())] {
            let response = http
                .post(format!("{base}/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", secret),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400);
        }

        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");

        let logs = std::fs::read_to_string(&log).unwrap();
        assert!(logs.contains("gha-auth ready"), "{logs}");
        assert!(logs.contains("client authentication failed"));
        assert!(logs.contains("\"stopped\"") || logs.contains("stopped"));
        for leaked in [&secret, &wrong, &access_token] {
            assert!(!logs.contains(leaked.as_str()), "a secret reached the log");
        }
        for line in logs.lines() {
            serde_json::from_str::<Value>(line).expect("every log line is JSON");
        }
    });
}

/// What a newcomer meets when something is off: each message names the thing and says what is
/// wrong, in the words the rest of the tool uses.
#[test]
fn messages_name_the_thing_and_what_is_wrong() {
    messages_name_the_thing_and_what_is_wrong_via(false);
}

/// The same, through `--server`: the admin API gives the same messages.
#[test]
fn messages_name_the_thing_and_what_is_wrong_through_the_server() {
    messages_name_the_thing_and_what_is_wrong_via(true);
}

/// A running `gha-auth serve` on a data directory, with an admin client `ops` whose secret is in
/// a file; stopped on drop.
struct Served {
    child: std::process::Child,
    server: String,
    secret_file: std::path::PathBuf,
}

impl Served {
    /// Starts the server on `data` with `env` (after adding `ops` on the store).
    fn start(data: &Path, env: &[(&str, &str)]) -> Self {
        let mut args = vec![
            "--json",
            "clients",
            "add",
            "ops",
            "--grant",
            "client_credentials",
            "--audience",
            "gha-auth-admin",
        ];
        for scope in [
            "admin:clients",
            "admin:users",
            "admin:keys",
            "admin:link-keys",
            "admin:broker",
            "admin:audit",
        ] {
            args.extend_from_slice(&["--scope", scope]);
        }
        let secret = json(&gha_auth(data, &args))["client_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_file = data.with_file_name("ops-secret");
        std::fs::write(&secret_file, secret).unwrap();
        let port = gha_auth_testkit::free_port().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("GHA_AUTH_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        let child = command
            .envs(env.iter().copied())
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "serve",
                "--listen",
                &listen,
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let http = reqwest::Client::new();
            while http
                .get(format!("http://{listen}/HealthCheck"))
                .send()
                .await
                .is_err()
            {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "not ready in 10 s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Self {
            child,
            server: format!("http://{listen}"),
            secret_file,
        }
    }

    /// `args` after the options that send them through the server as the `ops` client.
    fn through<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec![
            "--server",
            self.server.as_str(),
            "--client-id",
            "ops",
            "--client-secret-file",
            self.secret_file.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        all
    }

    /// Runs `args` through the server.
    fn run(&self, data: &Path, args: &[&str]) -> Output {
        gha_auth(data, &self.through(args))
    }

    /// Runs `args` through the server with `input` on standard input.
    fn run_with(&self, data: &Path, input: &str, args: &[&str]) -> Output {
        gha_auth_with(data, &[], input, &self.through(args))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn messages_name_the_thing_and_what_is_wrong_via(through_server: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = through_server.then(|| Served::start(&data, &[]));
    let gha_auth = |data: &Path, args: &[&str]| match &served {
        Some(served) => served.run(data, args),
        None => gha_auth(data, args),
    };
    let add = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "clients",
            "add",
            id,
            "--grant",
            "client_credentials",
            "--audience",
            "mfs.api",
        ];
        args.extend_from_slice(extra);
        gha_auth(&data, &args)
    };
    assert!(add("svc", &[]).status.success());
    let duplicate = add("svc", &[]);
    assert_eq!(duplicate.status.code(), Some(1));
    assert_eq!(
        stderr(&duplicate).trim().lines().last(),
        Some(r#"error: client "svc" already exists"#)
    );

    let jwk = dir.path().join("svc-key.json");
    let key = gha_auth::keys::SigningKey::generate(gha_auth::keys::Algorithm::ES256).unwrap();
    std::fs::write(&jwk, serde_json::to_string(&key.public_jwk()).unwrap()).unwrap();
    let with_key = add("svc-jwt", &["--jwk", jwk.to_str().unwrap()]);
    assert!(with_key.status.success(), "{}", stderr(&with_key));
    assert!(
        stdout(&with_key).contains("private_key_jwt") && !stdout(&with_key).contains("without one"),
        "{}",
        stdout(&with_key)
    );
    let show = stdout(&gha_auth(&data, &["clients", "show", "svc-jwt"]));
    assert!(show.contains("auth method:  private_key_jwt"), "{show}");
    assert!(!show.contains("PrivateKeyJwt"), "{show}");

    // Flags that only mean something to `serve` are not offered to other commands.
    let help = stdout(&gha_auth(&data, &["clients", "add", "--help"]));
    assert!(
        !help.contains("--listen") && !help.contains("--issuer"),
        "{help}"
    );
    let help = stdout(&gha_auth(&data, &["serve", "--help"]));
    assert!(
        help.contains("--listen") && help.contains("--issuer"),
        "{help}"
    );
}

/// A data directory the process cannot write is named, with why, before anything else fails.
#[cfg(unix)]
#[test]
fn an_unwritable_data_directory_is_named_with_the_cause() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root ignores permission bits; a read-only directory is what root cannot write to here.
    let running_as_root = std::fs::write(data.join("probe"), b"").is_ok();
    if running_as_root {
        std::fs::remove_file(data.join("probe")).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::remove_dir(&data).unwrap();
        // A file where the directory should be: no process can create files in it.
        std::fs::write(&data, b"not a directory").unwrap();
    }
    let output = gha_auth(
        &data,
        &[
            "clients",
            "add",
            "svc",
            "--grant",
            "client_credentials",
            "--audience",
            "a",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains(&data.display().to_string()) && text.contains("data directory"),
        "{text}"
    );
    assert!(!text.contains("code: 14"), "{text}");
}

/// A misspelt variable is reported where the operator looks: by `config check`, and in the log
/// once the server runs.
#[test]
fn unknown_variables_are_reported_by_config_check_and_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("GHA_AUTH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let check = command
        .env("GHA_AUTH_KEYS_ALGORITM", "EdDSA")
        .args(["--data-dir", data.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("GHA_AUTH_KEYS_ALGORITM")
            && stdout(&check).contains("did you mean GHA_AUTH_KEYS_ALGORITHM"),
        "{}",
        stdout(&check)
    );

    let port = gha_auth_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let log = dir.path().join("serve.log");
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("GHA_AUTH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let mut child = command
        .env("GHA_AUTH_KEYS_ALGORITM", "EdDSA")
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("gha-auth ready")
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not ready in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|line| line.contains("WARN") && line.contains("GHA_AUTH_KEYS_ALGORITM")),
        "{text}"
    );
}

/// Run from the wrong directory, a command that only reads refuses to create a store, and
/// every admin command says which store it acts on.
#[test]
fn reading_commands_never_create_a_store_and_every_command_names_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = data.join("gha-auth.db").display().to_string();
    for args in [
        &["clients", "list"][..],
        &["clients", "show", "svc"],
        &["users", "list"],
        &["keys", "list"],
        &["audit", "verify"],
        &["link-keys", "status"],
        &["secrets", "list"],
    ] {
        let output = gha_auth(&data, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let text = stderr(&output);
        assert!(
            text.contains(&format!("no store at {store}")),
            "{args:?}: {text}"
        );
        assert!(
            !data.join("gha-auth.db").exists(),
            "{args:?} created a store"
        );
        assert!(
            !data.join("master.key").exists(),
            "{args:?} created a master key"
        );
    }
    let added = gha_auth(
        &data,
        &[
            "clients",
            "add",
            "svc",
            "--grant",
            "client_credentials",
            "--audience",
            "a",
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stderr(&added).lines().next() == Some(&format!("gha-auth: store {store}")),
        "{}",
        stderr(&added)
    );
    let list = gha_auth(&data, &["clients", "list"]);
    assert!(list.status.success());
    assert!(stderr(&list).contains(&format!("gha-auth: store {store}")));
}

/// Runs `gha-auth` with `env` and `input` on standard input.
fn gha_auth_with(data: &Path, env: &[(&str, &str)], input: &str, args: &[&str]) -> Output {
    use std::io::Write as _;
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("GHA_AUTH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let mut child = command
        .env("USER", "operator")
        .envs(env.iter().copied())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// With `--server`, the commands go through the admin API of a running authority: no store or
/// master key on the operator's side, a client's secret file or a user's login for the token.
#[cfg(unix)]
#[test]
fn commands_work_through_the_admin_api_with_a_client_secret_or_a_login() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let home = dir.path().join("home");
    let config_home = dir.path().join("config");
    let env = [
        ("HOME", home.to_str().unwrap()),
        ("XDG_CONFIG_HOME", config_home.to_str().unwrap()),
    ];
    // The authority's side: an admin client, a login client and an admin user.
    let mut args = vec![
        "--json",
        "clients",
        "add",
        "ops",
        "--grant",
        "client_credentials",
        "--audience",
        "gha-auth-admin",
    ];
    for scope in ["admin:clients", "admin:users", "admin:keys", "admin:audit"] {
        args.extend_from_slice(&["--scope", scope]);
    }
    let secret = json(&gha_auth(&data, &args))["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let login_client = gha_auth(
        &data,
        &[
            "clients",
            "add",
            "gha-auth-cli",
            "--grant",
            "password",
            "--audience",
            "gha-auth-admin",
            "--first-party",
            "--public",
        ],
    );
    assert!(login_client.status.success(), "{}", stderr(&login_client));
    let boss = gha_auth_with(
        &data,
        &env,
        "a good long password\n",
        &["users", "add", "boss", "--role", "admin"],
    );
    assert!(boss.status.success(), "{}", stderr(&boss));

    let port = gha_auth_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let server = format!("http://{listen}");
    let mut child = Command::new(BIN)
        .env_remove("RUST_LOG")
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        while tokio::net::TcpStream::connect(&listen).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not ready in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    // The operator's side: another directory, no store.
    let elsewhere = dir.path().join("elsewhere");
    let secret_file = dir.path().join("ops-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let remote = |extra: &[&str]| {
        let mut args = vec![
            "--server",
            server.as_str(),
            "--client-id",
            "ops",
            "--client-secret-file",
            secret_file.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        gha_auth_with(&elsewhere, &env, "", &args)
    };
    let added = remote(&[
        "clients",
        "add",
        "svc",
        "--grant",
        "client_credentials",
        "--audience",
        "mfs.api",
    ]);
    assert!(
        stderr(&added).contains(&format!("gha-auth: server {server}")),
        "{}",
        stderr(&added)
    );
    assert!(
        json(&added)["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("ghac_")
    );
    let list = json(&remote(&["clients", "list"]));
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"svc") && ids.contains(&"ops"), "{ids:?}");
    assert_eq!(json(&remote(&["clients", "show", "svc"]))["id"], "svc");
    assert_eq!(
        json(&remote(&["clients", "disable", "svc"]))["disabled"],
        true
    );
    let missing = remote(&["clients", "show", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no client"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(
        json(&remote(&["keys", "list"])).as_array().unwrap().len(),
        1
    );
    assert_eq!(json(&remote(&["users", "list"]))[0]["username"], "boss");
    assert_eq!(
        json(&remote(&["audit", "verify"]))["problems"],
        serde_json::json!([])
    );
    // A scope the client lacks is refused by the server.
    let refused = remote(&["link-keys", "status"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("lacks the area's admin scope"),
        "{}",
        stderr(&refused)
    );
    assert!(!elsewhere.join("gha-auth.db").exists() && !elsewhere.join("master.key").exists());

    // Without credentials, the command says how to get them.
    let bare = gha_auth_with(&elsewhere, &env, "", &["--server", &server, "keys", "list"]);
    assert_eq!(bare.status.code(), Some(1));
    assert!(
        stderr(&bare).contains("no credentials for"),
        "{}",
        stderr(&bare)
    );

    // A user's login: the token is kept 0600 and used by the next commands.
    let login = gha_auth_with(
        &elsewhere,
        &env,
        "a good long password\n",
        &["--server", &server, "login", "--username", "boss"],
    );
    assert!(login.status.success(), "{}", stderr(&login));
    let token_file = config_home.join("gha-auth").join("token.json");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let keys = gha_auth_with(
        &elsewhere,
        &env,
        "",
        &["--server", &server, "--json", "keys", "list"],
    );
    assert_eq!(json(&keys).as_array().unwrap().len(), 1);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    // Every call through the server is in the audit log with its actor.
    let verify = json(&gha_auth(&data, &["--json", "audit", "verify"]));
    assert_eq!(verify["problems"], serde_json::json!([]));
}

/// `gha-auth healthcheck` (the image's HEALTHCHECK): 0 while the local server answers 200, 1
/// when nothing listens or the answer is not 200; the address is the configured `listen`.
#[test]
fn healthcheck_exits_0_only_while_the_local_health_check_answers_200() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let healthcheck = |listen: &str| {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("GHA_AUTH_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .env("GHA_AUTH_LISTEN", listen)
            .args(["--data-dir", data.to_str().unwrap(), "healthcheck"])
            .output()
            .unwrap()
    };

    // Nothing listens.
    let idle = format!("127.0.0.1:{}", gha_auth_testkit::free_port().unwrap());
    let refused = healthcheck(&idle);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains(&idle), "{}", stderr(&refused));

    // Something answers, but not 200.
    let unhealthy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unhealthy_addr = unhealthy.local_addr().unwrap().to_string();
    let answering = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = unhealthy.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let failed = healthcheck(&unhealthy_addr);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("503"), "{}", stderr(&failed));
    assert!(answering.join().unwrap().starts_with("GET /HealthCheck "));

    // A serving server.
    let port = gha_auth_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .env_remove("RUST_LOG")
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::new();
        while http
            .get(format!("http://{listen}/HealthCheck"))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "not ready in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let healthy = healthcheck(&listen);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(healthy.status.code(), Some(0), "{}", stderr(&healthy));
    assert!(stdout(&healthy).contains("200"), "{}", stdout(&healthy));
}

/// What the commands print is the same on the store and through the server: the same JSON and
/// the same text, read from one store; and what is written through the server is what the
/// store holds.
#[test]
fn commands_print_the_same_on_the_store_and_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ok = |output: Output| {
        assert!(output.status.success(), "{}", stderr(&output));
        output
    };
    ok(gha_auth(
        &data,
        &[
            "clients",
            "add",
            "svc",
            "--grant",
            "client_credentials",
            "--grant",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--scope",
            "orders:read",
            "--audience",
            "mfs.api",
            "--tenant",
            "acme",
        ],
    ));
    ok(gha_auth_with(
        &data,
        &[],
        "a good long password\n",
        &[
            "users", "add", "alice", "--tenant", "acme", "--role", "viewer",
        ],
    ));
    let value_file = dir.path().join("pw");
    std::fs::write(&value_file, "smtp-pw\n").unwrap();
    let field = format!("password=@{}", value_file.display());
    ok(gha_auth(
        &data,
        &["secrets", "put", "apps/billing/smtp", &field],
    ));
    let served = Served::start(&data, &[]);

    // Written through the server.
    let imported = ok(served.run_with(
        &data,
        "legacy-key-one-0123456789abcdef\n",
        &[
            "clients",
            "legacy-key",
            "add",
            "svc",
            "--subject",
            "legacy-user",
            "--scope",
            "orders:read",
            "--id",
            "lk-one",
        ],
    ));
    assert!(
        stdout(&imported).starts_with("Imported legacy key lk-one "),
        "{}",
        stdout(&imported)
    );
    std::fs::write(&value_file, "db-pw").unwrap();
    let put = ok(served.run(&data, &["secrets", "put", "apps/billing/db", &field]));
    assert_eq!(
        stdout(&put).trim(),
        "apps/billing/db: version 1 written (password)"
    );

    for args in [
        &["clients", "list"][..],
        &["clients", "show", "svc"],
        &["clients", "legacy-key", "list"],
        &["clients", "legacy-key", "list", "svc"],
        &["users", "list"],
        &["users", "list", "--tenant", "acme"],
        &["keys", "list"],
        &["link-keys", "status"],
        &["secrets", "list"],
        &["secrets", "get", "apps/billing/db"],
        &["secrets", "get", "apps/billing/smtp", "--show-values"],
    ] {
        for json in [false, true] {
            let mut all = Vec::new();
            if json {
                all.push("--json");
            }
            all.extend_from_slice(args);
            let local = ok(gha_auth(&data, &all));
            let remote = ok(served.run(&data, &all));
            assert_eq!(stdout(&remote), stdout(&local), "{all:?}");
            assert!(!stdout(&local).is_empty(), "{all:?}");
        }
    }
    let smtp = json(&served.run(
        &data,
        &[
            "--json",
            "secrets",
            "get",
            "apps/billing/smtp",
            "--show-values",
        ],
    ));
    assert_eq!(smtp["values"]["password"], "smtp-pw");

    // Revoked through the server, seen on the store.
    ok(served.run(&data, &["clients", "legacy-key", "revoke", "lk-one"]));
    let keys = json(&gha_auth(
        &data,
        &["--json", "clients", "legacy-key", "list"],
    ));
    assert!(keys[0]["revoked_at"].is_i64(), "{keys}");
    let unknown = served.run(&data, &["clients", "legacy-key", "revoke", "lk-none"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains(r#"legacy key "lk-none" not found"#),
        "{}",
        stderr(&unknown)
    );
}
