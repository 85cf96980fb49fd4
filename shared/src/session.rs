//! The session as it lives in sealed cookies, its timeouts, and the JSON that
//! `GET /auth/session` answers with (which never contains a token).

use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Seconds since the Unix epoch.
pub type UnixTime = u64;

/// The current time; handlers take it as an argument so tests can move it.
pub fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// 256 random bits, base64url: session ids, states, nonces, verifiers, codes.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url(SHA-256(value)): how one-time values become table keys, so the
/// table never holds the value itself.
pub fn hash_key(value: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(value.as_bytes()))
}

/// Who the user is, from the validated ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Subject at the provider.
    pub sub: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Email address.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    /// Username.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub preferred_username: Option<String>,
    /// Group names (Authentik sends `groups`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub groups: Option<Vec<String>>,
}

/// `__Host-session`: sent with every site request, so it holds only the
/// session id and its clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Our session id (random, never a pre-login value).
    pub sid: String,
    /// When the login completed.
    pub created_at: UnixTime,
    /// Last user activity (slides the idle window).
    pub last_seen: UnixTime,
    /// The absolute end; refresh never moves it.
    pub expires_at: UnixTime,
}

/// `__Secure-session-tokens` (path `/auth`): profile and provider tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Must equal the marker's `sid`, or neither counts.
    pub sid: String,
    /// The user.
    pub user: User,
    /// The provider's session id (`sid` claim), for back-channel logout.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idp_sid: Option<String>,
    /// Access token from the provider.
    pub access_token: Secret,
    /// When the access token expires.
    pub access_expires_at: UnixTime,
    /// The ID token, kept as `id_token_hint` for logout.
    pub id_token: Secret,
}

/// `__Secure-session-refresh` (path `/auth`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// Must equal the marker's `sid`.
    pub sid: String,
    /// The refresh token, when the provider issued one.
    pub refresh_token: Option<Secret>,
}

/// A whole session: what the three cookies carry together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `__Host-session`.
    pub marker: Marker,
    /// `__Secure-session-tokens`.
    pub tokens: Tokens,
    /// `__Secure-session-refresh`.
    pub refresh: Refresh,
}

/// Session lifetimes from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Idle timeout.
    pub idle: Duration,
    /// Absolute timeout.
    pub absolute: Duration,
}

impl Marker {
    /// When the idle window closes, never after the absolute end.
    pub fn idle_expires_at(&self, t: Timeouts) -> UnixTime {
        (self.last_seen.saturating_add(t.idle.as_secs())).min(self.expires_at)
    }

    /// Whether the session is still alive at `now`.
    pub fn is_live(&self, t: Timeouts, now: UnixTime) -> bool {
        now < self.expires_at && now < self.idle_expires_at(t)
    }
}

/// The JSON of `GET /auth/session`: who, and until when. Never a token.
#[derive(Debug, Serialize)]
pub struct SessionView<'a> {
    /// Always true (a missing session is a 401).
    pub authenticated: bool,
    /// The user.
    pub user: &'a User,
    /// When the access token expires (the client refreshes before).
    pub expires_at: UnixTime,
    /// When the session ends without activity.
    pub idle_expires_at: UnixTime,
    /// When the session ends regardless.
    pub session_expires_at: UnixTime,
}

impl Session {
    /// The public view of this session.
    pub fn view(&self, t: Timeouts) -> SessionView<'_> {
        SessionView {
            authenticated: true,
            user: &self.tokens.user,
            expires_at: self.tokens.access_expires_at,
            idle_expires_at: self.marker.idle_expires_at(t),
            session_expires_at: self.marker.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timeouts {
        Timeouts {
            idle: Duration::from_secs(100),
            absolute: Duration::from_secs(1000),
        }
    }

    #[test]
    fn idle_and_absolute_windows() {
        let m = Marker {
            sid: "s".into(),
            created_at: 0,
            last_seen: 0,
            expires_at: 1000,
        };
        assert!(m.is_live(t(), 99));
        assert!(!m.is_live(t(), 100));
        let late = Marker {
            last_seen: 950,
            ..m.clone()
        };
        assert_eq!(
            late.idle_expires_at(t()),
            1000,
            "idle never passes the absolute end"
        );
        assert!(!late.is_live(t(), 1000));
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert_ne!(hash_key(&a), a);
    }
}
