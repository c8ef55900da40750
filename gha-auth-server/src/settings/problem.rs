//! What a section's check reports: one [`ConfigProblem`] per broken invariant.

use std::fmt;

/// One broken invariant: which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigProblem {
    /// The dotted key path the problem is about, e.g. `keys.publish_ahead`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Where the value came from: `file:line` or the environment variable, when known.
    pub source: Option<String>,
}

impl ConfigProblem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
            source: None,
        }
    }

    /// The problem, saying where the value came from.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {} (set in {source})", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// The problems found so far; every section's check appends to one list, so all are reported
/// at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigProblem>);

impl Problems {
    /// Records that `key` is wrong.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem::new(key, message));
    }

    /// How many have been recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none has been recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The list.
    pub fn into_vec(self) -> Vec<ConfigProblem> {
        self.0
    }
}
