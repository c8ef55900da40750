//! Per-route guards for scopes, roles and tenant.
//!
//! A [`Requirement`] is a list of rules that must all hold. Check it per route with
//! [`RequireLayer`] (`route_layer`), or in a handler with [`Principal::require`]:
//!
//! ```no_run
//! # fn demo(auth: gha_auth_middleware::AuthLayer) {
//! use axum::{Router, routing::get};
//! use gha_auth_middleware::{Requirement, require_scope};
//!
//! let app: Router = Router::new()
//!     .route("/jobs", get(|| async { "[]" }).route_layer(require_scope("jobs:read")))
//!     .route(
//!         "/admin",
//!         get(|| async { "ok" })
//!             .route_layer(Requirement::scope("jobs:admin").and_role("admin").any_tenant().layer()),
//!     )
//!     .layer(auth);
//! # }
//! ```
//!
//! A guard on a route the auth layer does not cover answers 500 and logs the misconfiguration.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::{Method, Request};
use tower::{Layer, Service};

use crate::auth::future::ResponseFuture;
use crate::error::{AuthError, AuthErrorKind};
use crate::extract::AuthContext;
use crate::principal::Principal;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// All of these scopes.
    AllScopes(Vec<String>),
    /// At least one of these scope sets (each all-of).
    AnyScopeSet(Vec<Vec<String>>),
    /// At least one of these roles.
    AnyRole(Vec<String>),
    /// This tenant.
    Tenant(String),
    /// Some tenant.
    AnyTenant,
    /// A token, not a link key.
    TokenOnly,
    /// The link key of this integration.
    LinkKey(String),
}

/// Rules a principal must all satisfy. Build with the constructors and chain with `and_*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    rules: Vec<Rule>,
}

impl Requirement {
    /// No rule: any authenticated principal.
    pub fn authenticated() -> Self {
        Self::default()
    }

    /// The scope `scope`.
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::default().and_scope(scope)
    }

    /// All of `scopes`.
    pub fn all_scopes<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        Self::default().and_all_scopes(scopes)
    }

    /// At least one of `scopes`.
    pub fn any_scope<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        Self::default().and_any_scope(scopes)
    }

    /// The role `role`.
    pub fn role(role: impl Into<String>) -> Self {
        Self::default().and_role(role)
    }

    /// The tenant `tenant`.
    pub fn tenant(tenant: impl Into<String>) -> Self {
        Self::default().and_tenant(tenant)
    }

    /// Also the scope `scope`.
    pub fn and_scope(self, scope: impl Into<String>) -> Self {
        self.and_all_scopes([scope])
    }

    /// Also all of `scopes`.
    pub fn and_all_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.rules.push(Rule::AllScopes(
            scopes.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Also at least one of `scopes`.
    pub fn and_any_scope<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.rules.push(Rule::AnyScopeSet(
            scopes.into_iter().map(|s| vec![s.into()]).collect(),
        ));
        self
    }

    /// Also the role `role`.
    pub fn and_role(self, role: impl Into<String>) -> Self {
        self.and_any_role([role])
    }

    /// Also at least one of `roles`.
    pub fn and_any_role<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.rules
            .push(Rule::AnyRole(roles.into_iter().map(Into::into).collect()));
        self
    }

    /// Also the tenant `tenant`.
    pub fn and_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.rules.push(Rule::Tenant(tenant.into()));
        self
    }

    /// Also some tenant (for tenant-scoped routes that read it from the principal).
    pub fn any_tenant(mut self) -> Self {
        self.rules.push(Rule::AnyTenant);
        self
    }

    /// Also a token (link keys refused).
    pub fn token_only(mut self) -> Self {
        self.rules.push(Rule::TokenOnly);
        self
    }

    /// Also the link key of integration `name` (tokens refused).
    pub fn link_key(mut self, name: impl Into<String>) -> Self {
        self.rules.push(Rule::LinkKey(name.into()));
        self
    }

    /// This requirement as a route layer.
    pub fn layer(self) -> RequireLayer {
        RequireLayer::new(self)
    }

    /// Checks `principal`: `Err` is a 403 `insufficient_scope`, naming the missing scopes in the
    /// challenge.
    pub fn check(&self, principal: &Principal) -> Result<(), AuthError> {
        for rule in &self.rules {
            match rule {
                Rule::AllScopes(scopes) => {
                    if !scopes.iter().all(|s| principal.has_scope(s)) {
                        return Err(AuthError::insufficient_scope(
                            format!("missing scope (needs all of: {})", scopes.join(" ")),
                            [scopes.join(" ")],
                        ));
                    }
                }
                Rule::AnyScopeSet(sets) => {
                    if !sets
                        .iter()
                        .any(|set| set.iter().all(|s| principal.has_scope(s)))
                    {
                        let alternatives: Vec<String> = sets.iter().map(|s| s.join(" ")).collect();
                        return Err(AuthError::insufficient_scope(
                            format!("missing scope (needs one of: {})", alternatives.join(", ")),
                            alternatives,
                        ));
                    }
                }
                Rule::AnyRole(roles) => {
                    if !roles.iter().any(|r| principal.has_role(r)) {
                        return Err(forbidden(format!("missing role (needs one of: {roles:?})")));
                    }
                }
                Rule::Tenant(tenant) => {
                    if principal.tenant() != Some(tenant.as_str()) {
                        return Err(forbidden(format!(
                            "wrong tenant: route is for {tenant:?}, caller is for {:?}",
                            principal.tenant()
                        )));
                    }
                }
                Rule::AnyTenant => {
                    if principal.tenant().is_none() {
                        return Err(forbidden(
                            "route is tenant-scoped and the caller has no tenant",
                        ));
                    }
                }
                Rule::TokenOnly => {
                    if principal.as_token().is_none() {
                        return Err(forbidden("route needs a token; a link key was presented"));
                    }
                }
                Rule::LinkKey(name) => {
                    if principal
                        .as_link_key()
                        .is_none_or(|link| link.name() != name)
                    {
                        return Err(forbidden(format!("route needs the {name:?} link key")));
                    }
                }
            }
        }
        Ok(())
    }
}

fn forbidden(reason: impl Into<std::borrow::Cow<'static, str>>) -> AuthError {
    AuthError::new(AuthErrorKind::InsufficientScope, reason)
}

/// A route layer requiring the scope `scope`: `route_layer(require_scope("jobs:read"))`.
pub fn require_scope(scope: impl Into<String>) -> RequireLayer {
    Requirement::scope(scope).layer()
}

/// A route layer requiring the role `role`.
pub fn require_role(role: impl Into<String>) -> RequireLayer {
    Requirement::role(role).layer()
}

/// A route layer checking a [`Requirement`] against the principal the auth layer found.
///
/// Anonymous callers get 401; principals that fall short get 403 `insufficient_scope`. CORS
/// preflights pass untouched.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireLayer {
    requirement: Arc<Requirement>,
}

impl RequireLayer {
    /// A layer checking `requirement`.
    pub fn new(requirement: Requirement) -> Self {
        Self {
            requirement: Arc::new(requirement),
        }
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Require {
            inner,
            requirement: Arc::clone(&self.requirement),
        }
    }
}

/// The service [`RequireLayer`] builds.
#[derive(Debug, Clone)]
pub struct Require<S> {
    inner: S,
    requirement: Arc<Requirement>,
}

impl<S, B> Service<Request<B>> for Require<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let preflight = request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key("access-control-request-method");
        if preflight {
            return ResponseFuture::inner(self.inner.call(request));
        }
        let verdict = match request.extensions().get::<AuthContext>() {
            None => Err(AuthError::missing_layer("RequireLayer guard")),
            Some(AuthContext::Anonymous) => Err(AuthError::new(
                AuthErrorKind::MissingCredentials,
                "route needs credentials; none presented",
            )),
            Some(AuthContext::Authenticated(principal)) => self.requirement.check(principal),
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(error) => ResponseFuture::rejected(error.into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{
        LinkKeyIdentity, LinkKeyPrincipal, Scopes, TokenPrincipal, VerifiedToken,
    };

    fn token(scope: &str, roles: &[&str], tenant: Option<&str>) -> Principal {
        let payload = serde_json::json!({
            "sub": "u", "exp": 10, "scope": scope, "roles": roles, "tenant": tenant,
        });
        let verified =
            VerifiedToken::from_payload(payload.to_string().into(), "k".into(), 0).unwrap();
        Principal::Token(TokenPrincipal(Arc::new(verified)))
    }

    fn link(name: &str) -> Principal {
        Principal::LinkKey(LinkKeyPrincipal(Arc::new(LinkKeyIdentity {
            name: name.into(),
            key_id: "k1".into(),
            subject: format!("link-key:{name}"),
            tenant: Some("acme".into()),
            scopes: Scopes::from_space_delimited("jobs:update"),
            roles: Vec::new(),
        })))
    }

    #[test]
    fn requirement_table() {
        let reader = token("jobs:read", &[], Some("acme"));
        let writer = token("jobs:read jobs:write", &["dispatcher"], Some("acme"));
        let other_tenant = token("jobs:read", &[], Some("globex"));
        let no_tenant = token("jobs:read", &[], None);
        let epicor = link("epicor");
        let cases: Vec<(&str, Requirement, &Principal, Option<Vec<&str>>)> = vec![
            ("authenticated", Requirement::authenticated(), &reader, None),
            ("has scope", Requirement::scope("jobs:read"), &reader, None),
            (
                "missing scope",
                Requirement::scope("jobs:write"),
                &reader,
                Some(vec!["jobs:write"]),
            ),
            (
                "all scopes",
                Requirement::all_scopes(["jobs:read", "jobs:write"]),
                &reader,
                Some(vec!["jobs:read jobs:write"]),
            ),
            (
                "all scopes held",
                Requirement::all_scopes(["jobs:read", "jobs:write"]),
                &writer,
                None,
            ),
            (
                "any scope",
                Requirement::any_scope(["jobs:admin", "jobs:read"]),
                &reader,
                None,
            ),
            (
                "none of any scope",
                Requirement::any_scope(["jobs:admin", "jobs:write"]),
                &reader,
                Some(vec!["jobs:admin", "jobs:write"]),
            ),
            ("role", Requirement::role("dispatcher"), &writer, None),
            (
                "missing role",
                Requirement::role("dispatcher"),
                &reader,
                Some(vec![]),
            ),
            ("tenant", Requirement::tenant("acme"), &reader, None),
            (
                "wrong tenant",
                Requirement::tenant("acme"),
                &other_tenant,
                Some(vec![]),
            ),
            (
                "any tenant",
                Requirement::authenticated().any_tenant(),
                &reader,
                None,
            ),
            (
                "no tenant",
                Requirement::authenticated().any_tenant(),
                &no_tenant,
                Some(vec![]),
            ),
            (
                "token only",
                Requirement::authenticated().token_only(),
                &epicor,
                Some(vec![]),
            ),
            (
                "link key",
                Requirement::authenticated().link_key("epicor"),
                &epicor,
                None,
            ),
            (
                "other link key",
                Requirement::authenticated().link_key("other"),
                &epicor,
                Some(vec![]),
            ),
            (
                "link key needed",
                Requirement::authenticated().link_key("epicor"),
                &reader,
                Some(vec![]),
            ),
            (
                "link key scopes",
                Requirement::scope("jobs:update").and_tenant("acme"),
                &epicor,
                None,
            ),
            (
                "chained: second rule fails",
                Requirement::scope("jobs:read").and_role("dispatcher"),
                &reader,
                Some(vec![]),
            ),
        ];
        for (name, requirement, principal, want) in cases {
            let got = requirement.check(principal);
            match (got, want) {
                (Ok(()), None) => {}
                (Err(error), Some(scopes)) => {
                    assert_eq!(error.kind(), AuthErrorKind::InsufficientScope, "{name}");
                    let challenges: Vec<String> = error
                        .challenges()
                        .iter()
                        .map(|c| c.to_str().unwrap().to_owned())
                        .collect();
                    if scopes.is_empty() {
                        assert_eq!(
                            challenges,
                            [r#"Bearer error="insufficient_scope""#],
                            "{name}"
                        );
                    } else {
                        let expected: Vec<String> = scopes
                            .iter()
                            .map(|s| format!(r#"Bearer error="insufficient_scope", scope="{s}""#))
                            .collect();
                        assert_eq!(challenges, expected, "{name}");
                    }
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
