//! Per-client-IP request limits in fixed windows, kept as DynamoDB counters
//! with TTL: one atomic `UpdateItem ADD` per request.
//!
//! The client IP is API Gateway's `requestContext` source IP, never a
//! client-supplied header. API Gateway's stage throttling is the outer layer.

use std::time::Duration;

use crate::session::UnixTime;
use crate::store::{keys, Store, StoreError};

/// Endpoints that share a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndpointClass {
    /// `GET /auth/login`.
    Login,
    /// `GET /auth/callback`.
    Callback,
    /// `GET /auth/session`.
    Session,
    /// `POST /auth/session` (exchange code redemption).
    Exchange,
    /// `POST /auth/refresh`.
    Refresh,
    /// `POST /auth/logout`.
    Logout,
    /// `POST /auth/backchannel-logout`.
    Backchannel,
}

impl EndpointClass {
    /// Every class, for configuration.
    pub const ALL: [EndpointClass; 7] = [
        Self::Login,
        Self::Callback,
        Self::Session,
        Self::Exchange,
        Self::Refresh,
        Self::Logout,
        Self::Backchannel,
    ];

    /// Name used in keys, variables and audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Callback => "callback",
            Self::Session => "session",
            Self::Exchange => "exchange",
            Self::Refresh => "refresh",
            Self::Logout => "logout",
            Self::Backchannel => "backchannel",
        }
    }

    /// The variable overriding this class's limit.
    pub fn limit_var(self) -> &'static str {
        match self {
            Self::Login => "RATE_LIMIT_LOGIN_PER_WINDOW",
            Self::Callback => "RATE_LIMIT_CALLBACK_PER_WINDOW",
            Self::Session => "RATE_LIMIT_SESSION_PER_WINDOW",
            Self::Exchange => "RATE_LIMIT_EXCHANGE_PER_WINDOW",
            Self::Refresh => "RATE_LIMIT_REFRESH_PER_WINDOW",
            Self::Logout => "RATE_LIMIT_LOGOUT_PER_WINDOW",
            Self::Backchannel => "RATE_LIMIT_BACKCHANNEL_PER_WINDOW",
        }
    }

    /// Requests per IP per window (60 s by default). Generous for people
    /// behind one NAT, tight enough that a script cannot fill the table with
    /// login transactions or hammer the provider through us.
    pub fn default_limit(self) -> u32 {
        match self {
            // A person logs in a few times a minute at most; an office NAT many.
            Self::Login | Self::Callback => 60,
            // Every open tab polls; a NAT of tabs is still far below this.
            Self::Session => 600,
            // One redemption per login.
            Self::Exchange => 60,
            // One refresh per access-token lifetime per tab.
            Self::Refresh => 120,
            Self::Logout => 60,
            // The provider's own servers; few IPs, bursts at mass logout.
            Self::Backchannel => 600,
        }
    }
}

/// How many requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per window.
    pub max: u32,
    /// Window length.
    pub window: Duration,
}

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Over the limit: retry after this many seconds.
    Limited {
        /// Seconds until the window resets.
        retry_after: u64,
    },
}

/// Counts this request and says whether it is within the limit.
pub async fn hit(
    store: &impl Store,
    class: EndpointClass,
    limit: Limit,
    client_ip: &str,
    now: UnixTime,
) -> Result<Verdict, StoreError> {
    let window = limit.window.as_secs().max(1);
    let index = now / window;
    let window_end = (index + 1) * window;
    let pk = format!("{}{}#{}#{}", keys::RATE, class.name(), client_ip, index);
    let count = store.increment(&pk, window_end).await?;
    if count > u64::from(limit.max) {
        Ok(Verdict::Limited {
            retry_after: window_end.saturating_sub(now).max(1),
        })
    } else {
        Ok(Verdict::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn limits_per_ip_per_window() {
        let store = MemoryStore::default();
        let limit = Limit {
            max: 3,
            window: Duration::from_secs(60),
        };
        for _ in 0..3 {
            assert_eq!(
                hit(&store, EndpointClass::Login, limit, "192.0.2.1", 120)
                    .await
                    .unwrap(),
                Verdict::Allowed
            );
        }
        assert_eq!(
            hit(&store, EndpointClass::Login, limit, "192.0.2.1", 130)
                .await
                .unwrap(),
            Verdict::Limited { retry_after: 50 }
        );
        // Another IP and another class are unaffected.
        assert_eq!(
            hit(&store, EndpointClass::Login, limit, "192.0.2.2", 130)
                .await
                .unwrap(),
            Verdict::Allowed
        );
        assert_eq!(
            hit(&store, EndpointClass::Session, limit, "192.0.2.1", 130)
                .await
                .unwrap(),
            Verdict::Allowed
        );
        // The next window starts from zero.
        assert_eq!(
            hit(&store, EndpointClass::Login, limit, "192.0.2.1", 180)
                .await
                .unwrap(),
            Verdict::Allowed
        );
    }
}
