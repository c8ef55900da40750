//! Library half of the gha-auth service.
