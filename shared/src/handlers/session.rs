//! `GET /auth/session`: who is logged in (never a token), sliding the idle
//! window unless the request is a background poll.
//! `POST /auth/session`: redeems a one-time exchange code (exchange hand-off).

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::callback::EXCHANGE_SEAL_NAME;
use super::{
    hit, is_revoked, limit_outcome, load_session, revocation_keys, session_reply, transport,
    Transport, Unusable, Write,
};
use crate::audit::{self, Event};
use crate::edge::{self, Endpoint, Incoming, Reply};
use crate::error::AuthError;
use crate::ratelimit::EndpointClass;
use crate::session::{hash_key, now, Marker, Session, UnixTime};
use crate::state::AppState;
use crate::store::{keys, Store};

/// Query flag marking a background poll: it reads the session without
/// sliding the idle window, so an open tab cannot keep an idle session alive.
pub const BACKGROUND_PARAM: &str = "background";

/// Lambda entry point.
pub async fn handle<S: Store>(
    state: &AppState<S>,
    req: Request,
) -> Result<Response<Body>, Infallible> {
    edge::run(
        Endpoint::Session,
        &state.config.redirects,
        state.cookie_scope(),
        req,
        |incoming| async move {
            match incoming.method {
                http::Method::GET => current(state, incoming, now()).await,
                http::Method::POST => redeem(state, incoming, now()).await,
                _ => Err(AuthError::MethodNotAllowed),
            }
        },
    )
    .await
}

/// Loads the session and checks revocation in one round trip (with the
/// rate-limit counter), auditing why a session is refused.
pub(crate) async fn verified_session<S: Store>(
    state: &AppState<S>,
    incoming: &Incoming,
    class: EndpointClass,
    now: UnixTime,
) -> Result<Session, AuthError> {
    let ctx = &incoming.audit;
    let session = match load_session(state, incoming, now) {
        Ok(s) => s,
        Err(why) => {
            // Count the refusal too, so probing with junk cookies is limited.
            limit_outcome(ctx, class, hit(state, class, ctx, now).await)?;
            if why != Unusable::Absent {
                audit::emit(
                    ctx,
                    Event::SessionRejected {
                        reason: why.reason(),
                        sub: None,
                    },
                );
            }
            return Err(AuthError::NoSession);
        }
    };
    let revocation = revocation_keys(&session);
    let (verdict, found) = tokio::join!(
        hit(state, class, ctx, now),
        state.store.get_many(&revocation, now)
    );
    limit_outcome(ctx, class, verdict)?;
    if is_revoked(&session, &found?) {
        audit::emit(
            ctx,
            Event::SessionRejected {
                reason: "revoked",
                sub: Some(&session.tokens.user.sub),
            },
        );
        return Err(AuthError::NoSession);
    }
    Ok(session)
}

/// `GET`: the current user.
pub async fn current<S: Store>(
    state: &AppState<S>,
    incoming: Incoming,
    now: UnixTime,
) -> Result<Reply, AuthError> {
    let mut session = verified_session(state, &incoming, EndpointClass::Session, now).await?;
    let background = incoming
        .param(BACKGROUND_PARAM)
        .is_some_and(|v| v == "1" || v == "true");
    let write = if background {
        Write::Nothing
    } else {
        session.marker = Marker {
            last_seen: now,
            ..session.marker
        };
        Write::Marker
    };
    session_reply(
        state,
        &session,
        now,
        &incoming,
        transport(state, &incoming),
        write,
    )
}

#[derive(Deserialize)]
struct RedeemBody {
    code: String,
    /// `"bearer"`: answer with a `session_handle` instead of cookies, for
    /// sites whose browsers block third-party cookies.
    #[serde(default)]
    transport: Option<String>,
}

/// Exchange codes are 43 base64url characters (256 bits).
fn well_formed_code(code: &str) -> bool {
    code.len() == 43
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `POST`: redeems a one-time exchange code and sets the session cookies.
pub async fn redeem<S: Store>(
    state: &AppState<S>,
    incoming: Incoming,
    now: UnixTime,
) -> Result<Reply, AuthError> {
    incoming.check_csrf(&state.config.redirects)?;
    let ctx = &incoming.audit;
    let body: RedeemBody =
        serde_json::from_slice(&incoming.body).map_err(|_| AuthError::BadRequest("body"))?;
    if !well_formed_code(&body.code) {
        return Err(AuthError::BadRequest("code"));
    }
    let pk = format!("{}{}", keys::EXCHANGE, hash_key(&body.code));
    // One conditional delete: of two racing redemptions only one gets it,
    // and an item past `expires_at` counts as gone.
    let (verdict, taken) = tokio::join!(
        hit(state, EndpointClass::Exchange, ctx, now),
        state.store.take(&pk, now)
    );
    limit_outcome(ctx, EndpointClass::Exchange, verdict)?;
    let Some(sealed) = taken? else {
        audit::emit(ctx, Event::ExchangeReplayed);
        return Err(AuthError::InvalidGrant);
    };
    let session: Session = state
        .config
        .cookie_keys
        .open_json(EXCHANGE_SEAL_NAME, &sealed)
        .map_err(|_| AuthError::InvalidGrant)?;
    let wanted = match body.transport.as_deref() {
        None | Some("cookie") => Transport::Cookies,
        Some("bearer") => Transport::Bearer,
        Some(_) => return Err(AuthError::BadRequest("transport")),
    };
    let reply = session_reply(state, &session, now, &incoming, wanted, Write::Everything)?;
    audit::emit(
        ctx,
        Event::ExchangeRedeemed {
            sub: &session.tokens.user.sub,
        },
    );
    Ok(reply)
}
