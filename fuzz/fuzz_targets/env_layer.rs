//! The `GHA_AUTH_*` environment layer of `Config::load` on arbitrary variables: it never panics,
//! a malformed boolean or integer is reported by its variable's name and never by its value,
//! the store URL (it may hold a password) is never echoed, and what loads passes or fails the
//! invariant checks without panicking.
//!
//! Input: `NAME=VALUE` lines; names are prefixed with `GHA_AUTH_` unless they already are, and
//! a name that is a number picks a real variable, so most inputs reach the parsers.
#![no_main]

use gha_auth_server::config::{Config, ConfigError, EnvKind, Overrides, env_vars};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let known = env_vars();
    let mut env = Vec::new();
    for line in text.lines().take(16) {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = match name.parse::<usize>() {
            Ok(n) if !known.is_empty() => known[n % known.len()].name(),
            _ if name.starts_with("GHA_AUTH_") => name.to_owned(),
            _ => format!("GHA_AUTH_{name}"),
        };
        // Whether the layer promises never to show this value.
        let hidden = name == "GHA_AUTH_STORE_URL"
            || known.iter().any(|v| {
                v.name() == name && matches!(v.kind, EnvKind::Bool | EnvKind::Integer)
            });
        env.push((name, value.to_owned(), hidden));
    }
    let vars = env.iter().map(|(n, v, _)| (n.clone(), v.clone()));
    match Config::load(None, vars, &Overrides::default()) {
        Ok(config) => {
            let _ = config.problems();
        }
        Err(ConfigError::Invalid(problems)) => {
            let message = ConfigError::Invalid(problems).to_string();
            for (_, value, hidden) in &env {
                // Values of eight bytes or more that are not part of a name (the message names
                // the variables): never shown.
                if *hidden
                    && value.len() >= 8
                    && message.contains(value.as_str())
                    && !env.iter().any(|(name, _, _)| name.contains(value.as_str()))
                {
                    panic!("a value is echoed: {message}");
                }
            }
        }
        Err(other) => panic!("the environment alone cannot fail to read a file: {other}"),
    }
});
