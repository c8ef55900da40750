use std::collections::BTreeSet;

use super::*;

const SAMPLE: &str = include_str!("../../../config/gha-auth.sample.toml");

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The sample with its commented-out optional keys (`# key = value`) switched on.
fn sample_with_optional_keys() -> String {
    SAMPLE
        .lines()
        .map(|line| {
            let trimmed = line.trim_start_matches("# ");
            let is_key = trimmed.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            });
            if line.starts_with("# ") && is_key {
                trimmed.to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn leaf_paths(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => leaf_paths(inner, &path, out),
            _ => {
                out.insert(path);
            }
        }
    }
}

#[test]
fn sample_parses_and_matches_the_embedded_defaults() {
    let sample = Config::from_toml(SAMPLE).expect("sample parses");
    assert_eq!(sample, Config::default());
    assert!(sample.problems().is_empty(), "{:?}", sample.problems());
}

#[test]
fn sample_optional_keys_are_real_keys() {
    let text = sample_with_optional_keys();
    assert_ne!(text, SAMPLE, "the sample documents optional keys");
    let config = Config::from_toml(&text).expect("sample with optional keys parses");
    assert!(config.issuer.is_some());
    assert!(config.store.url.is_some());
    assert!(config.keys.master_key_file.is_some());
    assert!(config.keys.import_pem.is_some());
}

#[test]
fn every_sample_key_has_a_documented_environment_variable_and_back() {
    let table: toml::Table = sample_with_optional_keys().parse().unwrap();
    let mut paths = BTreeSet::new();
    leaf_paths(&table, "", &mut paths);
    let vars: BTreeSet<String> = env_vars().iter().map(|v| v.path.to_owned()).collect();
    assert_eq!(paths, vars, "sample keys and environment variables differ");
    for var in env_vars() {
        assert!(
            SAMPLE.contains(&format!("env: {}", var.name())),
            "{} undocumented",
            var.name()
        );
    }
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    for text in [
        "lisen = \"127.0.0.1:1\"",
        "[keys]\nrotation = \"1d\"",
        "[nope]\na = 1",
    ] {
        let err = Config::from_toml(text).unwrap_err().to_string();
        assert!(err.contains("unknown"), "{text}: {err}");
    }
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1111\"\n[keys]\nrotation_period = \"7d\"\n",
    )
    .unwrap();
    let vars = env(&[
        ("GHA_AUTH_LISTEN", "127.0.0.1:2222"),
        ("GHA_AUTH_STORE_URL", "postgres://u:pw@localhost/db"),
        ("GHA_AUTH_DEV_MODE", "yes"),
        ("GHA_AUTH_HTTP_MAX_BODY_BYTES", "4096"),
        ("GHA_AUTH_TOKENS_DEFAULT_LIFETIME", "5m"),
        ("GHA_AUTH_CONFIG", "ignored"),
        ("GHA_AUTH_SOMETHING_ELSE", "ignored"),
        ("PATH", "/bin"),
    ]);
    let config = Config::load(Some(&file), vars.clone(), &Overrides::default()).unwrap();
    assert_eq!(config.listen.port(), 2222);
    assert_eq!(config.keys.rotation_period, Duration::days(7));
    assert_eq!(config.store_url(), "postgres://u:pw@localhost/db");
    assert!(config.dev_mode);
    assert_eq!(config.http.max_body_bytes, 4096);
    assert_eq!(config.tokens.default_lifetime, Duration::minutes(5));

    let flags = Overrides::new(
        Some("127.0.0.1:3333".parse().unwrap()),
        Some("/tmp/x".into()),
        Some("https://auth.example".into()),
    );
    let config = Config::load(Some(&file), vars, &flags).unwrap();
    assert_eq!(config.listen.port(), 3333);
    assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(config.issuer.as_deref(), Some("https://auth.example"));
}

#[test]
fn malformed_environment_values_name_the_variable_not_the_value() {
    let err = Config::load(
        None,
        env(&[("GHA_AUTH_DEV_MODE", "s3cret")]),
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("GHA_AUTH_DEV_MODE"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn store_password_never_shows_in_debug() {
    let config = Config::load(
        None,
        env(&[("GHA_AUTH_STORE_URL", "postgres://u:hunter2@h/db")]),
        &Overrides::default(),
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("u:redacted@"), "{debug}");
}

#[test]
fn defaults_are_secure() {
    let config = Config::load(None, no_env(), &Overrides::default()).unwrap();
    assert_eq!(config.listen, DEFAULT_LISTEN);
    assert!(!config.dev_mode);
    assert!(!config.allow_insecure_http);
    assert!(config.store_url().starts_with("sqlite://"));
    assert!(config.store_url().ends_with("gha-auth.db"));
    assert_eq!(config.issuer_for(DEFAULT_LISTEN), "http://127.0.0.1:8700");
    assert_eq!(config.master_key_path(), PathBuf::from("./data/master.key"));
}

fn problem_keys(text: &str) -> Vec<String> {
    Config::from_toml(text)
        .unwrap()
        .problems()
        .into_iter()
        .map(|p| p.key)
        .collect()
}

#[test]
fn plain_http_on_a_public_address_is_refused_unless_allowed() {
    assert!(problem_keys("listen = \"0.0.0.0:8700\"").contains(&"listen".to_owned()));
    assert!(problem_keys("listen = \"0.0.0.0:8700\"\nallow_insecure_http = true").is_empty());
    assert!(problem_keys("issuer = \"http://auth.example\"").contains(&"issuer".to_owned()));
    assert!(problem_keys("issuer = \"https://auth.example\"").is_empty());
    assert!(problem_keys("issuer = \"http://localhost:8700\"").is_empty());
    assert!(problem_keys("issuer = \"https://auth.example/?x=1\"").contains(&"issuer".to_owned()));
    assert!(problem_keys("issuer = \"ftp://auth.example\"").contains(&"issuer".to_owned()));
}

#[test]
fn schedule_invariants_are_enforced() {
    assert!(
        problem_keys("[keys]\npublish_ahead = \"5m\"").contains(&"keys.publish_ahead".to_owned())
    );
    assert!(
        problem_keys("[keys]\nrotation_period = \"30m\"")
            .contains(&"keys.publish_ahead".to_owned()),
        "publish_ahead must be shorter than the rotation period"
    );
    assert!(
        problem_keys("[keys]\nrefresh_interval = \"1h\"")
            .contains(&"keys.refresh_interval".to_owned())
    );
    assert!(problem_keys("[keys]\nleeway = \"1h\"").contains(&"keys.leeway".to_owned()));
}

#[test]
fn token_lifetimes_must_fit_the_schedule() {
    assert!(
        problem_keys("[tokens]\ndefault_lifetime = \"2h\"")
            .contains(&"tokens.default_lifetime".to_owned())
    );
    assert!(
        problem_keys("[keys]\nrotation_period = \"2h\"\n[tokens]\nmax_lifetime = \"3h\"")
            .contains(&"tokens.max_lifetime".to_owned())
    );
    assert!(
        problem_keys("[tokens]\nclient_assertion_max_lifetime = \"0s\"")
            .contains(&"tokens.client_assertion_max_lifetime".to_owned())
    );
}

#[test]
fn other_invariants() {
    assert!(problem_keys("[store]\nurl = \"mysql://x\"").contains(&"store.url".to_owned()));
    assert!(
        problem_keys("[http]\nmax_body_bytes = 10").contains(&"http.max_body_bytes".to_owned())
    );
    assert!(problem_keys("[log]\nlevel = \"[[[\"").contains(&"log.level".to_owned()));
    let err = Config::from_toml("[keys]\nalgorithm = \"HS256\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("HS256"), "{err}");
}

#[test]
fn invalid_error_lists_every_problem() {
    let config =
        Config::from_toml("listen = \"0.0.0.0:1\"\n[keys]\npublish_ahead = \"1m\"").unwrap();
    let err = config.check().unwrap_err().to_string();
    assert!(err.contains("listen:"), "{err}");
    assert!(err.contains("keys.publish_ahead:"), "{err}");
}

#[test]
fn sessions_need_a_client_and_origins_written_as_browsers_send_them() {
    assert!(
        Config::default().session.client_id.is_none(),
        "sessions are off by default"
    );
    let on = "[session]\nclient_id = \"web-portal\"\n";
    assert!(
        problem_keys(&format!(
            "{on}allowed_origins = [\"https://portal.example\"]"
        ))
        .is_empty()
    );
    assert!(
        problem_keys(&format!(
            "{on}allowed_origins = [\"http://127.0.0.1:8090\"]"
        ))
        .is_empty(),
        "plain http for loopback pages"
    );
    assert_eq!(problem_keys(on), ["session.allowed_origins"]);
    for origin in [
        "*",
        "https://portal.example/",
        "https://Portal.example",
        "https://portal.example:443",
        "http://portal.example",
        "null",
    ] {
        assert_eq!(
            problem_keys(&format!("{on}allowed_origins = [\"{origin}\"]")),
            ["session.allowed_origins"],
            "{origin}"
        );
    }
    assert_eq!(
        problem_keys("[session]\nallowed_origins = [\"https://portal.example\"]"),
        ["session.allowed_origins"],
        "origins without a client"
    );
    let config = Config::load(
        None,
        env(&[
            ("GHA_AUTH_SESSION_CLIENT_ID", "web-portal"),
            (
                "GHA_AUTH_SESSION_ALLOWED_ORIGINS",
                "https://a.example, https://b.example,",
            ),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        config.session.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
}

/// Credentials in any outbound URL are refused, whether or not a user name goes with the
/// password (`https://:pw@host` was once accepted for Vault).
#[test]
fn credentials_in_every_outbound_url_are_refused() {
    let epicor = |url: &str| {
        format!(
            "[link_keys.epicor.target]\nkind = \"epicor\"\nbase_url = \"{url}\"\ncompany = \"C\"\n\
             credentials_vault_path = \"integrations/epicor\"\n\
             [vault]\naddress = \"https://vault.example:8200\"\ntoken_file = \"t\"\n"
        )
    };
    let webhook = |url: &str| {
        format!(
            "[link_keys.other.target]\nkind = \"webhook\"\nurl = \"{url}\"\nauth = \"bearer\"\n\
             secret_file = \"s\"\n"
        )
    };
    let vault = |url: &str| format!("[vault]\naddress = \"{url}\"\ntoken_file = \"t\"\n");
    let alerts = |url: &str| format!("[alerts]\nwebhook_url = \"{url}\"\n");
    let issuer = |url: &str| format!("issuer = \"{url}\"\n");
    type Section<'a> = &'a dyn Fn(&str) -> String;
    let cases: [(Section<'_>, &str, &str); 5] = [
        (&vault, "vault.example:8200", "vault"),
        (&epicor, "erp.example.com/EpicorERP", "link_keys"),
        (&webhook, "hooks.example/link-key", "link_keys"),
        (&alerts, "alerts.example/hook", "alerts.webhook_url"),
        (&issuer, "auth.example", "issuer"),
    ];
    for (section, host, key) in cases {
        assert!(
            !problem_keys(&section(&format!("https://{host}"))).contains(&key.to_owned()),
            "{key}: a plain https URL is fine"
        );
        for credentials in ["user:pw@", ":pw@", "user@"] {
            let text = section(&format!("https://{credentials}{host}"));
            let problems = Config::from_toml(&text).unwrap().problems();
            let problem = problems
                .iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("{key} with {credentials}: {problems:?}"));
            assert!(
                !problem.message.contains("pw"),
                "{key}: the password is not repeated: {problem}"
            );
        }
    }
}

/// A file with several mistyped values reports every one at once, each with its line; the
/// environment's mistakes are named by variable, never called a file, and never show the value.
#[test]
fn every_malformed_value_is_reported_at_once_with_where_it_was_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gha-auth.toml");
    std::fs::write(
        &file,
        "listen = 5\n\
         [keys]\n\
         rotation_period = \"soon\"\n\
         algorithm = \"HS256\"\n\
         [http]\n\
         max_body_bytes = \"big\"\n\
         [users]\n\
         nonsense = 1\n",
    )
    .unwrap();
    let err = Config::load(
        Some(&file),
        env(&[
            ("GHA_AUTH_DEV_MODE", "s3cret"),
            ("GHA_AUTH_STORE_MAX_CONNECTIONS", "many"),
        ]),
        &Overrides::default(),
    )
    .unwrap_err();
    let ConfigError::Invalid(problems) = &err else {
        panic!("{err}");
    };
    let by_key = |key: &str| {
        problems
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("{key} missing from {err}"))
    };
    let at = |line: usize| Some(format!("{}:{line}", file.display()));
    assert_eq!(by_key("listen").source, at(1));
    assert_eq!(by_key("keys.rotation_period").source, at(3));
    assert_eq!(by_key("keys.algorithm").source, at(4));
    assert_eq!(by_key("http.max_body_bytes").source, at(6));
    assert!(
        by_key("users.nonsense").message.contains("unknown"),
        "{err}"
    );
    assert_eq!(by_key("users.nonsense").source, at(8));
    assert_eq!(
        by_key("dev_mode").source.as_deref(),
        Some("environment variable GHA_AUTH_DEV_MODE")
    );
    assert_eq!(
        by_key("store.max_connections").source.as_deref(),
        Some("environment variable GHA_AUTH_STORE_MAX_CONNECTIONS")
    );
    let text = err.to_string();
    assert!(!text.contains("s3cret") && !text.contains("many"), "{text}");
    assert!(!text.contains("config file"), "{text}");
    assert_eq!(problems.len(), 7, "{text}");
}

/// Invariant problems say where the value came from too.
#[test]
fn invariant_problems_name_the_file_line_or_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gha-auth.toml");
    std::fs::write(&file, "# keys\n[keys]\npublish_ahead = \"1m\"\n").unwrap();
    let config = Config::load(
        Some(&file),
        env(&[("GHA_AUTH_LISTEN", "0.0.0.0:8700")]),
        &Overrides::default(),
    )
    .unwrap();
    let problems = config.problems();
    let source = |key: &str| {
        problems
            .iter()
            .find(|p| p.key == key)
            .and_then(|p| p.source.clone())
    };
    assert_eq!(
        source("keys.publish_ahead"),
        Some(format!("{}:3", file.display()))
    );
    assert_eq!(
        source("listen").as_deref(),
        Some("environment variable GHA_AUTH_LISTEN")
    );
}

/// A misspelt variable is not silently dropped: it is reported, with the name it was meant to
/// be.
#[test]
fn unknown_variables_are_reported_with_the_nearest_name() {
    let config = Config::load(
        None,
        env(&[
            ("GHA_AUTH_KEYS_ALGORITM", "EdDSA"),
            ("GHA_AUTH_CONFIG", "ignored: the CLI reads it"),
            ("GHA_AUTH_SOMETHING_ELSE", "x"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("GHA_AUTH_KEYS_ALGORITM") && w.contains("GHA_AUTH_KEYS_ALGORITHM")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("GHA_AUTH_SOMETHING_ELSE")),
        "{warnings:?}"
    );
}
