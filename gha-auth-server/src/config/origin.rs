//! Where each configured value came from (a line of the file, or an environment variable), so
//! that every problem can say where to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::settings::ConfigProblem;

/// The source of one key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A line of the configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// The line, from 1, when it could be found.
        line: Option<usize>,
    },
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// The origin of every key that did not come from the embedded defaults, by dotted path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// Records that `path` was set by `origin` (the environment wins over the file).
    pub(crate) fn set(&mut self, path: &str, origin: Origin) {
        self.0.insert(path.to_owned(), origin);
    }

    /// Every key of `table` (a parsed file), with its line in `text`.
    pub(crate) fn of_file(file: &Path, text: &str, table: &toml::Table) -> Self {
        let lines = key_lines(text);
        let mut origins = Self::default();
        let mut paths = Vec::new();
        leaf_paths(table, "", &mut paths);
        for path in paths {
            // An array of tables (`[[broker.grants]]`) is found by its first key.
            let line = lines.get(&path).copied().or_else(|| {
                lines
                    .range(format!("{path}.")..)
                    .next()
                    .filter(|(key, _)| key.starts_with(&format!("{path}.")))
                    .map(|(_, line)| *line)
            });
            origins.set(
                &path,
                Origin::File {
                    path: file.to_owned(),
                    line,
                },
            );
        }
        origins
    }

    /// `problem` with where its key's value came from, when known.
    pub(crate) fn annotate(&self, problem: ConfigProblem) -> ConfigProblem {
        match self.of(&problem.key) {
            Some(origin) if problem.source.is_none() => problem.with_source(origin.to_string()),
            _ => problem,
        }
    }

    /// Where the value of `key` (or, failing that, of the nearest enclosing table) came from.
    pub(crate) fn of(&self, key: &str) -> Option<&Origin> {
        let mut key = key;
        loop {
            if let Some(origin) = self.0.get(key) {
                return Some(origin);
            }
            // A problem about a whole table (`link_keys`) points at its first key.
            if let Some((_, origin)) = self
                .0
                .range(format!("{key}.")..)
                .next()
                .filter(|(path, _)| path.starts_with(&format!("{key}.")))
            {
                return Some(origin);
            }
            key = key.rsplit_once('.')?.0;
        }
    }
}

/// The dotted paths of every leaf value of `table`.
fn leaf_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => leaf_paths(inner, &path, out),
            _ => out.push(path),
        }
    }
}

/// The line of each `key = …` in `text`, by dotted path under its `[table]` header. A plain scan
/// of the layout the sample file uses; a key it cannot place just has no line.
fn key_lines(text: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let mut table = String::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            table = header
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .replace(['"', ' '], "");
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        let path = if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        };
        lines.entry(path).or_insert(index + 1);
    }
    lines
}
