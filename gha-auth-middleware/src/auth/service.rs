//! [`Auth`], the service [`super::AuthLayer`] builds.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::Request;
use tower::{Service, ServiceExt};

use super::decide::{Decision, RequestPolicy, decide};
use super::future::ResponseFuture;
use super::layer::Shared;
use crate::error::{AuthError, AuthErrorKind};
use crate::extract::AuthContext;
use crate::metrics as m;
use crate::principal::Principal;
use crate::verify::Lookup;

/// Authenticates each request, then calls the inner service with the principal in the request
/// extensions, or answers with the rejection.
pub struct Auth<S> {
    inner: S,
    /// One `Arc` for both halves: routers clone the service for every request.
    state: Arc<ServiceState>,
}

/// What every request of one [`super::AuthLayer`] reads.
pub(crate) struct ServiceState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) policy: RequestPolicy,
}

impl<S: Clone> Clone for Auth<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl<S> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("policy", &self.state.policy)
            .finish_non_exhaustive()
    }
}

impl<S> Auth<S> {
    pub(super) fn new(inner: S, state: Arc<ServiceState>) -> Self {
        Self { inner, state }
    }
}

/// What the synchronous part decided.
enum Step {
    Forward(Option<AuthContext>),
    Reject(AuthError),
    Verify(String),
}

impl<S> Auth<S> {
    /// Everything that can be decided without waiting: the request decision, link keys and the
    /// verified-token cache.
    fn step(&self, method: &http::Method, headers: &http::HeaderMap) -> Step {
        let shared = &self.state.shared;
        match decide(&self.state.policy, method, headers) {
            Decision::Preflight => {
                m::count(&m::REQUEST_PREFLIGHT);
                Step::Forward(None)
            }
            Decision::Anonymous => {
                m::count(&m::REQUEST_ANONYMOUS);
                Step::Forward(Some(AuthContext::Anonymous))
            }
            Decision::Reject(error) => Step::Reject(error),
            Decision::LinkKey(key) => {
                match shared.link_keys.authenticate(key, shared.clock.now()) {
                    Ok(principal) => {
                        m::count(&m::REQUEST_ACCEPTED_LINK_KEY);
                        Step::Forward(Some(AuthContext::Authenticated(Principal::LinkKey(
                            principal,
                        ))))
                    }
                    Err(error) => Step::Reject(error),
                }
            }
            Decision::Token(token, _origin) => {
                let Some(verifier) = &shared.tokens else {
                    return Step::Reject(AuthError::new(
                        AuthErrorKind::InvalidToken,
                        "this service accepts no tokens (no key source configured)",
                    ));
                };
                match verifier.lookup(token) {
                    Lookup::Hit(principal) => {
                        m::count(&m::REQUEST_ACCEPTED_TOKEN);
                        Step::Forward(Some(AuthContext::Authenticated(Principal::Token(
                            principal,
                        ))))
                    }
                    Lookup::Reject(error) => Step::Reject(error),
                    Lookup::Miss => Step::Verify(token.to_owned()),
                }
            }
        }
    }
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match self.step(request.method(), request.headers()) {
            Step::Forward(context) => {
                if let Some(context) = context {
                    request.extensions_mut().insert(context);
                }
                ResponseFuture::inner(self.inner.call(request))
            }
            Step::Reject(error) => ResponseFuture::rejected(error.into_response()),
            Step::Verify(token) => {
                // First sight of this token: verify it, then call a ready clone of the inner
                // service (the one polled ready stays with the caller's contract).
                let shared = Arc::clone(&self.state.shared);
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::verifying(Box::pin(async move {
                    let Some(verifier) = &shared.tokens else {
                        return Ok(AuthError::new(AuthErrorKind::InvalidToken, "no key source")
                            .into_response());
                    };
                    match verifier.verify(&token).await {
                        Ok(principal) => {
                            m::count(&m::REQUEST_ACCEPTED_TOKEN);
                            request
                                .extensions_mut()
                                .insert(AuthContext::Authenticated(Principal::Token(principal)));
                            inner.oneshot(request).await
                        }
                        Err(error) => Ok(error.into_response()),
                    }
                }))
            }
        }
    }
}
