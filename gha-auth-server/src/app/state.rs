//! [`AppState`]: every feature's state side by side. Each feature's router asks only for its
//! own part (`FromRef`), so no feature sees another's state or this type.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::admin::Admin;
use crate::broker::Broker;
use crate::caller::Callers;
use crate::health::Health;
use crate::linkkeys::http::Validators;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::oauth::OAuth;
use crate::revocations::Feed;
use crate::session::Sessions;
use crate::wellknown::Discovery;

/// The state the router is built on.
#[derive(Debug, Clone, FromRef)]
pub(crate) struct AppState {
    pub(crate) oauth: Arc<OAuth>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) discovery: Arc<Discovery>,
    pub(crate) feed: Arc<Feed>,
    pub(crate) callers: Arc<Callers>,
    pub(crate) broker: Arc<Broker>,
    pub(crate) validators: Arc<Validators>,
    pub(crate) health: Health,
    pub(crate) metrics: Metrics,
    pub(crate) monitor: Arc<Monitor>,
    pub(crate) admin: Arc<Admin>,
}
