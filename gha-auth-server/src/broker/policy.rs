//! Who may read what: `[[broker.grants]]` compiled into a [`Policy`], and the decision as a pure
//! function ([`Policy::decide`]).
//!
//! Default deny: a client without a grant, a path no pattern matches, a role not listed, and any
//! path under a reserved prefix (the authority's own documents in Vault) are refused.

use std::collections::HashMap;

use super::BrokerGrant;

/// Longest secret path accepted.
pub(crate) const MAX_SECRET_PATH_LEN: usize = 512;
/// Longest database role name accepted.
pub(crate) const MAX_ROLE_LEN: usize = 128;

fn is_valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `path` is a secret path: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none empty,
/// `.` or `..`, at most [`MAX_SECRET_PATH_LEN`] bytes.
pub(crate) fn is_valid_secret_path(path: &str) -> bool {
    path.len() <= MAX_SECRET_PATH_LEN && path.split('/').all(is_valid_segment)
}

/// Whether `role` is a database role name: one segment of at most [`MAX_ROLE_LEN`] bytes.
pub(crate) fn is_valid_role(role: &str) -> bool {
    role.len() <= MAX_ROLE_LEN && is_valid_segment(role)
}

/// Whether `path` is `prefix` or lies below it (`a/b` is below `a`, `ab` is not).
fn at_or_below(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A path pattern of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathPattern {
    /// Exactly this path.
    Exact(String),
    /// Every path below this prefix (`apps/billing/*` → prefix `apps/billing`); the empty prefix
    /// (`*`) is every path.
    Below(String),
}

impl PathPattern {
    /// Parses `apps/billing/db`, `apps/billing/*` or `*`; `None` for anything else.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Self::Below(String::new()));
        }
        match text.strip_suffix("/*") {
            Some(prefix) if is_valid_secret_path(prefix) => Some(Self::Below(prefix.to_owned())),
            Some(_) => None,
            None if is_valid_secret_path(text) => Some(Self::Exact(text.to_owned())),
            None => None,
        }
    }

    /// Whether `path` (a valid secret path) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == path,
            Self::Below(prefix) if prefix.is_empty() => true,
            Self::Below(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
        }
    }

    /// Whether some path this pattern matches is `prefix` or lies below it.
    pub(crate) fn may_reach(&self, prefix: &str) -> bool {
        match self {
            Self::Exact(exact) => at_or_below(exact, prefix),
            Self::Below(mine) => {
                mine.is_empty() || at_or_below(mine, prefix) || at_or_below(prefix, mine)
            }
        }
    }
}

/// What a client may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Grant {
    paths: Vec<PathPattern>,
    roles: Vec<String>,
}

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// A secret at this path.
    Secret(&'a str),
    /// Credentials of this database role.
    DatabaseRole(&'a str),
}

impl Target<'_> {
    /// `secret` or `database`, for audit events and metrics.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Target::Secret(_) => "secret",
            Target::DatabaseRole(_) => "database",
        }
    }

    /// The path or role.
    pub(crate) fn name(&self) -> &str {
        match self {
            Target::Secret(path) => path,
            Target::DatabaseRole(role) => role,
        }
    }
}

/// The decision, with the reason for a refusal (audited, never shown to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Allowed.
    Allow,
    /// Refused, and why.
    Deny(&'static str),
}

/// The compiled grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    grants: HashMap<String, Grant>,
    reserved: Vec<String>,
}

impl Policy {
    /// Compiles `grants`; paths under any of `reserved` are always refused. Invalid patterns
    /// are dropped (the configuration check reports them before the server starts).
    pub(crate) fn new(grants: &[BrokerGrant], reserved: Vec<String>) -> Self {
        let mut compiled: HashMap<String, Grant> = HashMap::new();
        for grant in grants {
            let entry = compiled.entry(grant.client_id.clone()).or_default();
            entry
                .paths
                .extend(grant.paths.iter().filter_map(|p| PathPattern::parse(p)));
            entry.roles.extend(grant.database_roles.iter().cloned());
        }
        Self {
            grants: compiled,
            reserved,
        }
    }

    /// May `client_id` read `target`? `target` must already be a valid path or role name.
    pub(crate) fn decide(&self, client_id: &str, target: Target<'_>) -> Decision {
        let Some(grant) = self.grants.get(client_id) else {
            return Decision::Deny("no grant for this client");
        };
        match target {
            Target::Secret(path) => {
                if self.reserved.iter().any(|r| at_or_below(path, r)) {
                    Decision::Deny("path is reserved for the authority's own keys")
                } else if grant.paths.iter().any(|p| p.matches(path)) {
                    Decision::Allow
                } else {
                    Decision::Deny("path not granted to this client")
                }
            }
            Target::DatabaseRole(role) => {
                if grant.roles.iter().any(|r| r == role) {
                    Decision::Allow
                } else {
                    Decision::Deny("database role not granted to this client")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(client: &str, paths: &[&str], roles: &[&str]) -> BrokerGrant {
        toml::from_str(&format!(
            "client_id = {client:?}\npaths = {paths:?}\ndatabase_roles = {roles:?}\n"
        ))
        .unwrap()
    }

    #[test]
    fn decisions_table() {
        let policy = Policy::new(
            &[
                grant("billing", &["apps/billing/*", "shared/smtp"], &["billing"]),
                grant("ops", &["*"], &[]),
            ],
            vec!["gha-auth/keys".into()],
        );
        let allow = Decision::Allow;
        let cases: &[(&str, Target<'_>, bool)] = &[
            ("billing", Target::Secret("apps/billing/db"), true),
            ("billing", Target::Secret("apps/billing/deep/er"), true),
            ("billing", Target::Secret("apps/billing"), false),
            ("billing", Target::Secret("apps/billingx/db"), false),
            ("billing", Target::Secret("shared/smtp"), true),
            ("billing", Target::Secret("shared/smtp/more"), false),
            ("billing", Target::Secret("shared"), false),
            ("billing", Target::DatabaseRole("billing"), true),
            ("billing", Target::DatabaseRole("billing-admin"), false),
            ("ops", Target::Secret("anything/at/all"), true),
            ("ops", Target::Secret("gha-auth/keys"), false),
            ("ops", Target::Secret("gha-auth/keys/signing-keys"), false),
            ("ops", Target::Secret("gha-auth/other"), true),
            ("ops", Target::DatabaseRole("billing"), false),
            ("stranger", Target::Secret("apps/billing/db"), false),
            ("stranger", Target::DatabaseRole("billing"), false),
            ("", Target::Secret("shared/smtp"), false),
        ];
        for (client, target, allowed) in cases {
            let decision = policy.decide(client, *target);
            assert_eq!(
                decision == allow,
                *allowed,
                "{client} {target:?}: {decision:?}"
            );
        }
    }

    #[test]
    fn patterns_parse_strictly() {
        for good in ["a", "a/b", "a-b_c.d/e", "a/*", "*"] {
            assert!(PathPattern::parse(good).is_some(), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", "a*", "a/*/b", "a b", "/*",
        ] {
            assert!(PathPattern::parse(bad).is_none(), "{bad}");
        }
        assert!(!is_valid_secret_path(&"a".repeat(MAX_SECRET_PATH_LEN + 1)));
        assert!(is_valid_role("billing-ro"));
        assert!(!is_valid_role("a/b"));
        assert!(!is_valid_role(".."));
    }

    #[test]
    fn reach_covers_both_directions() {
        let reserved = "gha-auth/keys";
        assert!(PathPattern::parse("*").unwrap().may_reach(reserved));
        assert!(
            PathPattern::parse("gha-auth/*")
                .unwrap()
                .may_reach(reserved)
        );
        assert!(
            PathPattern::parse("gha-auth/keys/x/*")
                .unwrap()
                .may_reach(reserved)
        );
        assert!(
            PathPattern::parse("gha-auth/keys")
                .unwrap()
                .may_reach(reserved)
        );
        assert!(
            !PathPattern::parse("gha-auth/keysx")
                .unwrap()
                .may_reach(reserved)
        );
        assert!(
            !PathPattern::parse("gha-auth/link/*")
                .unwrap()
                .may_reach(reserved)
        );
        assert!(!PathPattern::parse("gha-auth").unwrap().may_reach(reserved));
    }
}
