//! The audit trail: one structured JSON line per auth event, target `audit`.
//!
//! Reasons are `&'static str` so no request input can reach a line; the only
//! request-derived fields are the request id, client IP, user agent (bounded)
//! and the provider's `sub`. Never a token, code, verifier, cookie or secret.
//! Every event is documented in `docs/audit-events.md`.

/// Who and where, for every line.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// API Gateway's request id.
    pub request_id: String,
    /// Source IP from the request context.
    pub client_ip: String,
    /// User agent, truncated.
    pub user_agent: String,
    /// The endpoint (`login`, `callback`, ...).
    pub endpoint: &'static str,
}

/// User agents longer than this are cut.
pub const MAX_USER_AGENT: usize = 256;

/// The events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `/auth/login` created a transaction and redirected to the provider.
    LoginStarted,
    /// The callback created a session.
    LoginSucceeded {
        /// The user.
        sub: &'a str,
    },
    /// The callback made no session.
    LoginFailed {
        /// Why.
        reason: &'static str,
        /// The user, when the ID token was valid.
        sub: Option<&'a str>,
    },
    /// A one-time exchange code was redeemed.
    ExchangeRedeemed {
        /// The user.
        sub: &'a str,
    },
    /// An exchange code was unknown, expired or already used.
    ExchangeReplayed,
    /// Tokens were refreshed at the provider (or reused from a concurrent refresh).
    Refreshed {
        /// The user.
        sub: &'a str,
        /// `provider` for the one call, `shared` for a reused result.
        source: &'static str,
    },
    /// A refresh failed.
    RefreshFailed {
        /// Why.
        reason: &'static str,
        /// The user.
        sub: Option<&'a str>,
    },
    /// A session cookie was refused (idle, absolute, revoked, unreadable).
    SessionRejected {
        /// Why.
        reason: &'static str,
        /// The user, when known.
        sub: Option<&'a str>,
    },
    /// The user logged out.
    Logout {
        /// The user, when the cookies were still readable.
        sub: Option<&'a str>,
    },
    /// The provider ended sessions through back-channel logout.
    BackchannelLogout {
        /// The user, when named in the logout token.
        sub: Option<&'a str>,
    },
    /// A back-channel logout token was refused.
    BackchannelRejected {
        /// Why.
        reason: &'static str,
    },
    /// Over a rate limit.
    RateLimited {
        /// The endpoint class.
        class: &'static str,
    },
    /// A redirect target was refused.
    RedirectRejected {
        /// Why.
        reason: &'static str,
    },
    /// A state-changing request failed the CSRF checks.
    CsrfRejected {
        /// Why.
        reason: &'static str,
    },
    /// A malformed or oversized request was refused.
    RequestRejected {
        /// Why.
        reason: &'static str,
    },
    /// DynamoDB or the provider failed; the request got a 5xx.
    DependencyFailed {
        /// `dynamodb` or `identity_provider`.
        dependency: &'static str,
    },
}

impl Event<'_> {
    /// The event name in the log line.
    pub fn name(&self) -> &'static str {
        match self {
            Event::LoginStarted => "login_started",
            Event::LoginSucceeded { .. } => "login_succeeded",
            Event::LoginFailed { .. } => "login_failed",
            Event::ExchangeRedeemed { .. } => "exchange_redeemed",
            Event::ExchangeReplayed => "exchange_replayed",
            Event::Refreshed { .. } => "refreshed",
            Event::RefreshFailed { .. } => "refresh_failed",
            Event::SessionRejected { .. } => "session_rejected",
            Event::Logout { .. } => "logout",
            Event::BackchannelLogout { .. } => "backchannel_logout",
            Event::BackchannelRejected { .. } => "backchannel_rejected",
            Event::RateLimited { .. } => "rate_limited",
            Event::RedirectRejected { .. } => "redirect_rejected",
            Event::CsrfRejected { .. } => "csrf_rejected",
            Event::RequestRejected { .. } => "request_rejected",
            Event::DependencyFailed { .. } => "dependency_failed",
        }
    }

    fn reason(&self) -> Option<&'static str> {
        match *self {
            Event::LoginFailed { reason, .. }
            | Event::RefreshFailed { reason, .. }
            | Event::SessionRejected { reason, .. }
            | Event::BackchannelRejected { reason }
            | Event::RedirectRejected { reason }
            | Event::CsrfRejected { reason }
            | Event::RequestRejected { reason } => Some(reason),
            Event::RateLimited { class } => Some(class),
            Event::DependencyFailed { dependency } => Some(dependency),
            Event::Refreshed { source, .. } => Some(source),
            _ => None,
        }
    }

    fn sub(&self) -> Option<&str> {
        match *self {
            Event::LoginSucceeded { sub }
            | Event::ExchangeRedeemed { sub }
            | Event::Refreshed { sub, .. } => Some(sub),
            Event::LoginFailed { sub, .. }
            | Event::RefreshFailed { sub, .. }
            | Event::SessionRejected { sub, .. }
            | Event::Logout { sub }
            | Event::BackchannelLogout { sub } => sub,
            _ => None,
        }
    }
}

/// Writes one audit line.
pub fn emit(ctx: &Context, event: Event<'_>) {
    tracing::info!(
        target: "audit",
        event = event.name(),
        reason = event.reason(),
        sub = event.sub(),
        endpoint = ctx.endpoint,
        request_id = %ctx.request_id,
        client_ip = %ctx.client_ip,
        user_agent = %ctx.user_agent,
    );
}
