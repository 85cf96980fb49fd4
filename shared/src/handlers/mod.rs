//! One module per endpoint. Each `handle` parses through [`crate::edge`],
//! runs plain async logic over the store and provider, and never fails:
//! every error is already our JSON response.

use std::convert::Infallible;
use std::time::Duration;

use lambda_http::{Body, Request, Response};

use crate::audit::{self, Event};
use crate::cookies::{self, CookieError, Scope};
use crate::edge::{session_cookie_names, Incoming};
use crate::error::AuthError;
use crate::ratelimit::{self, EndpointClass, Verdict};
use crate::session::{Marker, Refresh, Session, Tokens, UnixTime};
use crate::state::AppState;
use crate::store::{keys, Store, StoreError};

pub mod authorize;
pub mod callback;
pub mod logout;
pub mod refresh;
pub mod session;

/// Dispatches by method and path, as API Gateway's routes do (for the local gateway).
pub async fn route<S: Store>(
    state: &AppState<S>,
    req: Request,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    match path.as_str() {
        "/auth/login" => authorize::handle(state, req).await,
        "/auth/callback" => callback::handle(state, req).await,
        "/auth/session" => session::handle(state, req).await,
        "/auth/refresh" => refresh::handle(state, req).await,
        "/auth/logout" | "/auth/backchannel-logout" => logout::handle(state, req).await,
        _ => {
            crate::edge::run(
                crate::edge::Endpoint::Session,
                &state.config.redirects,
                state.cookie_scope(),
                req,
                |_| async { Err(AuthError::NotFound) },
            )
            .await
        }
    }
}

/// Counts the request; the limiter fails open when the table is down,
/// because every endpoint's own table call then fails closed anyway.
pub(crate) fn limit_outcome(
    ctx: &audit::Context,
    class: EndpointClass,
    verdict: Result<Verdict, StoreError>,
) -> Result<(), AuthError> {
    match verdict {
        Ok(Verdict::Allowed) => Ok(()),
        Ok(Verdict::Limited { retry_after }) => {
            audit::emit(
                ctx,
                Event::RateLimited {
                    class: class.name(),
                },
            );
            Err(AuthError::RateLimited {
                retry_after: Duration::from_secs(retry_after),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; failing open");
            Ok(())
        }
    }
}

/// The rate-limit hit for a class, to run concurrently with other table calls.
pub(crate) async fn hit<S: Store>(
    state: &AppState<S>,
    class: EndpointClass,
    ctx: &audit::Context,
    now: UnixTime,
) -> Result<Verdict, StoreError> {
    let limit = state
        .config
        .rate_limits
        .get(&class)
        .copied()
        .unwrap_or(ratelimit::Limit {
            max: class.default_limit(),
            window: Duration::from_secs(60),
        });
    ratelimit::hit(&state.store, class, limit, &ctx.client_ip, now).await
}

/// Why a session in the cookies is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// No session cookies at all.
    Absent,
    /// Cookies that do not open or do not belong together.
    Unreadable,
    /// Idle timeout passed.
    Idle,
    /// Absolute timeout passed.
    Expired,
}

impl Unusable {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Unusable::Absent => "absent",
            Unusable::Unreadable => "unreadable",
            Unusable::Idle => "idle_timeout",
            Unusable::Expired => "absolute_timeout",
        }
    }
}

/// Opens the three session cookies and checks their timeouts.
pub(crate) fn load_session<S: Store>(
    state: &AppState<S>,
    incoming: &Incoming,
    now: UnixTime,
) -> Result<Session, Unusable> {
    let session = open_session(state, incoming)?;
    if now >= session.marker.expires_at {
        return Err(Unusable::Expired);
    }
    if !session.marker.is_live(state.timeouts(), now) {
        return Err(Unusable::Idle);
    }
    Ok(session)
}

/// How a session travels between the browser and us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The three HttpOnly cookies.
    Cookies,
    /// Exchange mode without third-party cookies: the sealed session as a
    /// bearer handle the site's script keeps in memory.
    Bearer,
}

/// The name sealed into session handles (associated data).
pub(crate) const HANDLE_SEAL_NAME: &str = "session-handle";

/// Bearer handles are honoured only in exchange mode; a same-site
/// deployment has no reason to let a script hold its session.
pub(crate) fn transport<S: Store>(state: &AppState<S>, incoming: &Incoming) -> Transport {
    match (state.config.handoff, incoming.bearer()) {
        (crate::config::Handoff::Exchange, Some(_)) => Transport::Bearer,
        _ => Transport::Cookies,
    }
}

/// The session's JSON, with the session delivered the way it came: cookies,
/// or a fresh `session_handle` in the body. `slid_only` writes just the
/// marker cookie (the idle window moved, nothing else changed).
pub(crate) fn session_reply<S: Store>(
    state: &AppState<S>,
    session: &Session,
    now: UnixTime,
    incoming: &Incoming,
    transport: Transport,
    write: Write,
) -> Result<crate::edge::Reply, AuthError> {
    let mut body = serde_json::to_value(session.view(state.timeouts())).unwrap_or_default();
    let mut reply = crate::edge::Reply::default();
    match (transport, write) {
        (_, Write::Nothing) => {}
        (Transport::Bearer, _) => {
            body["session_handle"] = serde_json::Value::String(
                state
                    .config
                    .cookie_keys
                    .seal_json(HANDLE_SEAL_NAME, session),
            );
        }
        (Transport::Cookies, Write::Marker) => {
            reply
                .cookies
                .push(marker_cookie(state, &session.marker, now))
        }
        (Transport::Cookies, Write::Everything) => {
            reply.cookies = session_cookies(state, session, now, incoming)?
        }
    }
    reply.status = 200;
    reply.body = Some(body);
    Ok(reply)
}

/// What a response must rewrite of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Nothing changed (background poll).
    Nothing,
    /// Only the idle clock moved.
    Marker,
    /// Tokens changed or the session is new.
    Everything,
}

/// Opens the session (cookies, or a bearer handle in exchange mode) without
/// looking at the clock.
pub(crate) fn open_session<S: Store>(
    state: &AppState<S>,
    incoming: &Incoming,
) -> Result<Session, Unusable> {
    let ring = &state.config.cookie_keys;
    if transport(state, incoming) == Transport::Bearer {
        let handle = incoming.bearer().unwrap_or_default();
        return ring
            .open_json(HANDLE_SEAL_NAME, handle)
            .map_err(|_| Unusable::Unreadable);
    }
    let marker_raw = incoming.cookie(cookies::SESSION);
    let tokens_raw = cookies::read_chunked(cookies::TOKENS, &|n| incoming.cookie(n));
    let refresh_raw = incoming.cookie(cookies::REFRESH);
    let (Some(marker_raw), Some(tokens_raw)) = (marker_raw, tokens_raw) else {
        return Err(if incoming.has_session_cookies() {
            Unusable::Unreadable
        } else {
            Unusable::Absent
        });
    };
    let marker: Marker = ring
        .open_json(cookies::SESSION, &marker_raw)
        .map_err(|_| Unusable::Unreadable)?;
    let tokens: Tokens = ring
        .open_json(cookies::TOKENS, &tokens_raw)
        .map_err(|_| Unusable::Unreadable)?;
    let refresh: Refresh = match refresh_raw {
        Some(raw) => ring
            .open_json(cookies::REFRESH, &raw)
            .map_err(|_| Unusable::Unreadable)?,
        None => Refresh {
            sid: marker.sid.clone(),
            refresh_token: None,
        },
    };
    // The three are one session only if they carry the same id.
    if tokens.sid != marker.sid || refresh.sid != marker.sid {
        return Err(Unusable::Unreadable);
    }
    Ok(Session {
        marker,
        tokens,
        refresh,
    })
}

/// Keys whose presence in the table means this session was ended.
pub(crate) fn revocation_keys(session: &Session) -> Vec<String> {
    let mut keys = vec![
        format!("{}{}", keys::REVOKED, session.marker.sid),
        format!(
            "{}{}",
            keys::REVOKED_SUB,
            crate::session::hash_key(&session.tokens.user.sub)
        ),
    ];
    if let Some(idp_sid) = &session.tokens.idp_sid {
        keys.push(format!(
            "{}{}",
            keys::REVOKED_IDP_SID,
            crate::session::hash_key(idp_sid)
        ));
    }
    keys
}

/// Whether any revocation record covers this session. A `revoked-sub#`
/// record ends the sessions created before its time.
pub(crate) fn is_revoked(session: &Session, found: &[(String, String)]) -> bool {
    found.iter().any(|(pk, data)| {
        if pk.starts_with(keys::REVOKED_SUB) {
            data.parse::<UnixTime>()
                .is_ok_and(|t| session.marker.created_at <= t)
        } else {
            true
        }
    })
}

/// `Set-Cookie` values for the marker only (idle window slides).
pub(crate) fn marker_cookie<S: Store>(
    state: &AppState<S>,
    marker: &Marker,
    now: UnixTime,
) -> String {
    let sealed = state.config.cookie_keys.seal_json(cookies::SESSION, marker);
    cookies::set(
        cookies::SESSION,
        sealed,
        marker.expires_at.saturating_sub(now),
        state.cookie_scope(),
    )
}

/// `Set-Cookie` values for a whole session.
pub(crate) fn session_cookies<S: Store>(
    state: &AppState<S>,
    session: &Session,
    now: UnixTime,
    incoming: &Incoming,
) -> Result<Vec<String>, AuthError> {
    let ring = &state.config.cookie_keys;
    let scope = state.cookie_scope();
    let max_age = session.marker.expires_at.saturating_sub(now);
    let mut out = vec![marker_cookie(state, &session.marker, now)];
    let tokens = ring.seal_json(cookies::TOKENS, &session.tokens);
    out.extend(
        cookies::set_chunked(cookies::TOKENS, &tokens, max_age, scope, &|n| {
            incoming.cookies.contains_key(n)
        })
        .map_err(|e: CookieError| match e {
            CookieError::TooLarge => AuthError::SessionTooLarge,
            _ => AuthError::SessionTooLarge,
        })?,
    );
    out.push(cookies::set(
        cookies::REFRESH,
        ring.seal_json(cookies::REFRESH, &session.refresh),
        max_age,
        scope,
    ));
    Ok(out)
}

/// `Set-Cookie` values that delete every session cookie and chunk.
pub(crate) fn clear_session_cookies(scope: Scope) -> Vec<String> {
    session_cookie_names()
        .iter()
        .map(|n| cookies::clear(n, scope))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;
    use crate::store::MemoryStore;

    fn state() -> AppState<MemoryStore> {
        let vars = HashMap::from([
            // Nothing listens on port 9: provider calls fail fast.
            ("OIDC_ISSUER", "http://127.0.0.1:9".to_owned()),
            ("OIDC_CLIENT_ID", "client".to_owned()),
            ("OIDC_CLIENT_SECRET", "secret".to_owned()),
            (
                "OIDC_REDIRECT_URI",
                "http://localhost:9000/auth/callback".to_owned(),
            ),
            ("ALLOWED_ORIGINS", "http://localhost:9000".to_owned()),
            (
                "POST_LOGOUT_REDIRECT_URI",
                "http://localhost:9000/".to_owned(),
            ),
            (
                "COOKIE_KEYS",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
            ),
            ("TABLE_NAME", "t".to_owned()),
        ]);
        AppState::new(Config::from_source(&vars).unwrap(), MemoryStore::default()).unwrap()
    }

    /// Every sample event in `events/` parses as API Gateway would deliver it
    /// and gets the documented answer, never a panic or an unexpected 5xx.
    #[tokio::test]
    async fn sample_events_get_their_documented_status() {
        let cases: [(&str, u16); 13] = [
            (include_str!("../../../events/authorize/login.json"), 502),
            (
                include_str!("../../../events/authorize/hostile-return-to.json"),
                400,
            ),
            (
                include_str!("../../../events/callback/unknown-state.json"),
                400,
            ),
            (
                include_str!("../../../events/callback/provider-error.json"),
                400,
            ),
            (include_str!("../../../events/session/anonymous.json"), 401),
            (
                include_str!("../../../events/session/tampered-cookie.json"),
                401,
            ),
            (
                include_str!("../../../events/session/redeem-unknown-code.json"),
                400,
            ),
            (include_str!("../../../events/session/preflight.json"), 204),
            (include_str!("../../../events/refresh/no-session.json"), 401),
            (include_str!("../../../events/refresh/cross-site.json"), 403),
            (include_str!("../../../events/logout/logout.json"), 200),
            (include_str!("../../../events/logout/cross-site.json"), 403),
            // The provider is down in this test: its keys cannot be fetched.
            (
                include_str!("../../../events/logout/backchannel-garbage.json"),
                502,
            ),
        ];
        let state = state();
        for (event, want) in cases {
            let request = lambda_http::request::from_str(event).unwrap();
            let path = request.uri().path().to_owned();
            let response = route(&state, request).await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                want,
                "{path}: {:?}",
                response.body()
            );
            assert_eq!(response.headers()["cache-control"], "no-store");
        }
    }
}
