//! axum extractors: [`Principal`], [`OptionalPrincipal`], [`Claims`] and [`Tenant`].
//!
//! They read what [`crate::AuthLayer`] put in the request. Used on a route the layer does not
//! cover, they fail **loudly**: a 500 and an `error` log line naming the mistake, because
//! silently treating the caller as anonymous would open the route.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{AuthError, AuthErrorKind};
use crate::principal::Principal;

/// What the layer decided, in the request extensions.
#[derive(Debug, Clone)]
pub(crate) enum AuthContext {
    /// No credentials, on a layer that allows anonymous access.
    Anonymous,
    /// Authenticated.
    Authenticated(Principal),
}

pub(crate) fn context<'a>(
    parts: &'a Parts,
    what: &'static str,
) -> Result<&'a AuthContext, AuthError> {
    parts
        .extensions
        .get::<AuthContext>()
        .ok_or_else(|| AuthError::missing_layer(what))
}

fn anonymous() -> AuthError {
    AuthError::new(
        AuthErrorKind::MissingCredentials,
        "route needs credentials; none presented",
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match context(parts, "Principal extractor")? {
            AuthContext::Authenticated(principal) => Ok(principal.clone()),
            AuthContext::Anonymous => Err(anonymous()),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match context(parts, "Option<Principal> extractor")? {
            AuthContext::Authenticated(principal) => Ok(Some(principal.clone())),
            AuthContext::Anonymous => Ok(None),
        }
    }
}

/// The caller if there is one, for routes behind a layer that allows anonymous access
/// ([`crate::AuthLayer::allow_anonymous`]). Same as `Option<Principal>`.
#[derive(Debug, Clone)]
pub struct OptionalPrincipal(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalPrincipal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match context(parts, "OptionalPrincipal extractor")? {
            AuthContext::Authenticated(principal) => Ok(Self(Some(principal.clone()))),
            AuthContext::Anonymous => Ok(Self(None)),
        }
    }
}

/// The verified token's claims, deserialized into your own type with custom claims.
///
/// ```
/// use gha_auth_middleware::Claims;
/// #[derive(serde::Deserialize)]
/// struct FieldClaims {
///     sub: String,
///     tenant: String,
///     #[serde(default)]
///     region: Option<String>, // a custom claim
/// }
/// async fn handler(Claims(claims): Claims<FieldClaims>) -> String {
///     format!("{} of {}", claims.sub, claims.tenant)
/// }
/// ```
///
/// Refused with 401 `invalid_token` when the caller used a link key (there are no claims) or the
/// claims do not fit `T` (a required claim missing).
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Claims<T> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = match context(parts, "Claims extractor")? {
            AuthContext::Authenticated(principal) => principal,
            AuthContext::Anonymous => return Err(anonymous()),
        };
        let Some(token) = principal.as_token() else {
            return Err(AuthError::new(
                AuthErrorKind::InvalidToken,
                "route reads token claims but the caller presented a link key",
            ));
        };
        token.claims().map(Claims).map_err(|e| {
            AuthError::new(
                AuthErrorKind::InvalidToken,
                format!(
                    "verified claims do not fit {}: {e}",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
}

/// The tenant the caller acts for; 403 `insufficient_scope` if it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match context(parts, "Tenant extractor")? {
            AuthContext::Authenticated(principal) => match principal.tenant() {
                Some(tenant) => Ok(Self(tenant.to_owned())),
                None => Err(AuthError::new(
                    AuthErrorKind::InsufficientScope,
                    "route is tenant-scoped and the caller has no tenant",
                )),
            },
            AuthContext::Anonymous => Err(anonymous()),
        }
    }
}
