//! `AuthError`, and its one mapping to HTTP: an OAuth-style JSON body with a
//! fixed description. The cause goes to the log, never to the client.

use std::time::Duration;

use crate::oidc::IdpError;
use crate::store::StoreError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Malformed request (duplicate or missing parameter, bad value).
    #[error("invalid request: {0}")]
    BadRequest(&'static str),
    /// Headers or cookies too large.
    #[error("headers too large")]
    HeadersTooLarge,
    /// Body too large.
    #[error("body too large")]
    BodyTooLarge,
    /// No session, or one that expired, was revoked or does not open.
    #[error("no valid session")]
    NoSession,
    /// CSRF checks failed.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A redirect target was refused.
    #[error("redirect target refused")]
    RedirectRefused,
    /// The login could not complete.
    #[error("login failed: {0}")]
    LoginFailed(&'static str),
    /// The user authenticated but the site's policy does not admit them
    /// (`ALLOWED_GROUPS`, `REQUIRED_ACR`).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The provider sent the user back with an error.
    #[error("provider error: {0}")]
    ProviderDenied(&'static str),
    /// A one-time code or grant was unknown, expired or used.
    #[error("invalid grant")]
    InvalidGrant,
    /// Too many requests.
    #[error("rate limited")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// Unknown route.
    #[error("not found")]
    NotFound,
    /// Known route, wrong method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The provider failed or is unusable.
    #[error("identity provider: {0}")]
    Idp(#[from] IdpError),
    /// The table failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The session does not fit in cookies.
    #[error("session too large for cookies")]
    SessionTooLarge,
}

impl AuthError {
    /// Status, OAuth error code and fixed description.
    pub fn parts(&self) -> (u16, &'static str, &'static str) {
        match self {
            AuthError::BadRequest(_) => (400, "invalid_request", "the request is malformed"),
            AuthError::HeadersTooLarge => (
                431,
                "invalid_request",
                "request headers or cookies are too large",
            ),
            AuthError::BodyTooLarge => (413, "invalid_request", "request body is too large"),
            AuthError::NoSession => (401, "login_required", "no valid session"),
            AuthError::Forbidden(_) => (403, "access_denied", "cross-site request refused"),
            AuthError::RedirectRefused => (
                400,
                "invalid_request",
                "return_to is not an allowed redirect target",
            ),
            AuthError::LoginFailed(_) => (400, "access_denied", "the login could not be completed"),
            AuthError::NotAllowed(_) => (
                403,
                "access_denied",
                "your account is not allowed to use this site",
            ),
            AuthError::ProviderDenied(code) => (
                400,
                code,
                "the identity provider did not authorize the login",
            ),
            AuthError::InvalidGrant => (
                400,
                "invalid_grant",
                "the code is unknown, expired or already used",
            ),
            AuthError::RateLimited { .. } => (
                429,
                "temporarily_unavailable",
                "too many requests, retry later",
            ),
            AuthError::NotFound => (404, "invalid_request", "no such endpoint"),
            AuthError::MethodNotAllowed => (405, "invalid_request", "method not allowed"),
            AuthError::Idp(IdpError::InvalidAnswer(_)) => (
                400,
                "access_denied",
                "the identity provider's answer failed validation",
            ),
            AuthError::Idp(IdpError::Rejected(_)) => (
                400,
                "invalid_grant",
                "the identity provider refused the grant",
            ),
            AuthError::Idp(_) => (502, "server_error", "the identity provider is unavailable"),
            AuthError::Store(_) => (
                503,
                "temporarily_unavailable",
                "the session store is unavailable",
            ),
            AuthError::SessionTooLarge => (
                502,
                "server_error",
                "the identity provider's tokens are too large",
            ),
        }
    }

    /// The dependency to blame in the audit log for a 5xx.
    pub fn dependency(&self) -> Option<&'static str> {
        match self {
            AuthError::Idp(IdpError::Unavailable(_) | IdpError::Metadata(_))
            | AuthError::SessionTooLarge => Some("identity_provider"),
            AuthError::Store(_) => Some("dynamodb"),
            _ => None,
        }
    }
}
