//! Tower layer and axum extractors for gha-auth tokens.
