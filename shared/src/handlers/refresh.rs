//! `POST /auth/refresh`: rotates tokens with the refresh token.
//!
//! Single-flight across tabs through the table: the first request claims the
//! refresh with a conditional write (a short lease), makes the one provider
//! call and stores the re-sealed result briefly; concurrent requests wait and
//! reuse it. Authentik has no grace window for a reused refresh token, so two
//! calls with the same token would log the user out.

use std::convert::Infallible;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::session::verified_session;
use super::{clear_session_cookies, session_reply, transport, Write};
use crate::audit::{self, Event};
use crate::edge::{self, Endpoint, Incoming, Reply};
use crate::error::AuthError;
use crate::oidc::IdpError;
use crate::ratelimit::EndpointClass;
use crate::session::{hash_key, now, Session, UnixTime};
use crate::state::AppState;
use crate::store::{keys, Store};

/// How long a claim holds: longer than one provider call can take
/// (`oidc::REQUEST_TIMEOUT`), short enough that a crashed holder blocks the
/// session only briefly.
pub const LEASE_SECS: u64 = 8;
/// How long the result stays for tabs whose requests carried the old cookies.
pub const RESULT_TTL_SECS: u64 = 30;
/// How often a waiting request looks for the result.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The name sealed into refresh results (associated data).
const RESULT_SEAL_NAME: &str = "refresh-result";
const PENDING: &str = "pending";

/// What the claim record holds once the holder is done.
#[derive(Debug, Serialize, Deserialize)]
enum Outcome {
    /// The refreshed session (sealed in the record).
    Refreshed(Box<Session>),
    /// The provider refused; the session is over.
    Ended(String),
}

/// Lambda entry point.
pub async fn handle<S: Store>(
    state: &AppState<S>,
    req: Request,
) -> Result<Response<Body>, Infallible> {
    edge::run(
        Endpoint::Refresh,
        &state.config.redirects,
        state.cookie_scope(),
        req,
        |incoming| async move {
            match incoming.method {
                http::Method::POST => refresh(state, incoming, now()).await,
                _ => Err(AuthError::MethodNotAllowed),
            }
        },
    )
    .await
}

/// Refreshes the session's tokens.
pub async fn refresh<S: Store>(
    state: &AppState<S>,
    incoming: Incoming,
    now: UnixTime,
) -> Result<Reply, AuthError> {
    incoming.check_csrf(&state.config.redirects)?;
    let ctx = incoming.audit.clone();
    let session = verified_session(state, &incoming, EndpointClass::Refresh, now).await?;
    let sub = session.tokens.user.sub.clone();
    let Some(refresh_token) = session.refresh.refresh_token.clone() else {
        audit::emit(
            &ctx,
            Event::RefreshFailed {
                reason: "no_refresh_token",
                sub: Some(&sub),
            },
        );
        return Err(AuthError::BadRequest("no_refresh_token"));
    };
    let pk = format!(
        "{}{}",
        keys::REFRESH,
        hash_key(&format!(
            "{}:{}",
            session.marker.sid,
            refresh_token.expose()
        ))
    );

    let outcome = single_flight(state, &session, &pk, &ctx, now).await?;
    match outcome {
        (Outcome::Refreshed(fresh), source) => {
            let carrier = transport(state, &incoming);
            let mut reply =
                session_reply(state, &fresh, now, &incoming, carrier, Write::Everything)?;
            if carrier == super::Transport::Cookies
                && state.config.handoff == crate::config::Handoff::Cookie
            {
                // Short-lived CloudFront cookies are renewed with the tokens.
                reply.cookies.extend(super::callback::cloudfront_cookies(
                    &state.config,
                    now,
                    fresh.marker.expires_at,
                ));
            }
            audit::emit(&ctx, Event::Refreshed { sub: &sub, source });
            Ok(reply)
        }
        (Outcome::Ended(reason), _) => {
            let reason = ended_reason(&reason);
            audit::emit(
                &ctx,
                Event::RefreshFailed {
                    reason,
                    sub: Some(&sub),
                },
            );
            // The cookies may have been copied: make them worthless now.
            let revoked = format!("{}{}", keys::REVOKED, session.marker.sid);
            state
                .store
                .put(&revoked, "refresh_ended", session.marker.expires_at)
                .await?;
            let mut reply = Reply {
                status: 401,
                body: Some(serde_json::json!({
                    "error": "login_required",
                    "error_description": "the session has ended",
                    "authenticated": false,
                })),
                ..Reply::default()
            };
            reply.cookies = clear_session_cookies(state.cookie_scope());
            Ok(reply)
        }
    }
}

fn ended_reason(stored: &str) -> &'static str {
    match stored {
        "invalid_grant" => "invalid_grant",
        "subject_changed" => "subject_changed",
        "not_allowed" => "group_not_allowed",
        _ => "refused",
    }
}

/// Claims the refresh or waits for whoever holds it.
async fn single_flight<S: Store>(
    state: &AppState<S>,
    session: &Session,
    pk: &str,
    ctx: &audit::Context,
    now: UnixTime,
) -> Result<(Outcome, &'static str), AuthError> {
    let ring = &state.config.cookie_keys;
    let started = std::time::Instant::now();
    let deadline = Duration::from_secs(LEASE_SECS + 2);
    loop {
        let clock = now + started.elapsed().as_secs();
        if state
            .store
            .insert_new(pk, PENDING, clock + LEASE_SECS, clock)
            .await?
        {
            return match perform(state, session, clock).await {
                Ok(outcome) => {
                    let sealed = ring.seal_json(RESULT_SEAL_NAME, &outcome);
                    // The provider has already rotated the token: losing the
                    // result now would leave this browser with a dead one. If
                    // the table cannot take it, this request still answers
                    // with the new tokens (other tabs wait out the lease).
                    if let Err(e) = state.store.put(pk, &sealed, clock + RESULT_TTL_SECS).await {
                        tracing::warn!(error = %e, "refresh result not shared; answering this request only");
                        audit::emit(
                            ctx,
                            Event::DependencyFailed {
                                dependency: "dynamodb",
                            },
                        );
                    }
                    Ok((outcome, "provider"))
                }
                Err(e) => {
                    // Transient: release the claim so the next request can try.
                    if let Err(release) = state.store.delete(pk).await {
                        tracing::warn!(error = %release, "could not release refresh claim; it expires with its lease");
                    }
                    audit::emit(
                        ctx,
                        Event::RefreshFailed {
                            reason: "provider_unavailable",
                            sub: Some(&session.tokens.user.sub),
                        },
                    );
                    Err(e)
                }
            };
        }
        // Someone else holds it: wait for the result, or for the lease to lapse.
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            if started.elapsed() > deadline {
                return Err(AuthError::Idp(IdpError::Unavailable(
                    "refresh holder did not finish".into(),
                )));
            }
            let clock = now + started.elapsed().as_secs();
            match state.store.get(pk, clock).await? {
                Some(data) if data == PENDING => continue,
                Some(sealed) => {
                    let outcome: Outcome = ring
                        .open_json(RESULT_SEAL_NAME, &sealed)
                        .map_err(|_| AuthError::NoSession)?;
                    return Ok((outcome, "shared"));
                }
                // Released after a failure, or the holder died and its lease
                // expired: try to claim again.
                None => break,
            }
        }
    }
}

/// The one provider call, and the checks on what comes back.
async fn perform<S: Store>(
    state: &AppState<S>,
    session: &Session,
    now: UnixTime,
) -> Result<Outcome, AuthError> {
    let Some(refresh_token) = &session.refresh.refresh_token else {
        return Ok(Outcome::Ended("refused".into()));
    };
    let refreshed = match state.oidc.refresh(refresh_token, now).await {
        Ok(r) => r,
        Err(IdpError::Rejected(code)) => return Ok(Outcome::Ended(code.to_owned())),
        // A refreshed ID token that fails validation ends the session too.
        Err(IdpError::InvalidAnswer(_)) => return Ok(Outcome::Ended("refused".into())),
        Err(e) => return Err(e.into()),
    };
    let mut fresh = session.clone();
    if let Some((id_token, claims)) = refreshed.id_token {
        // OIDC Core 12.2: same iss and sub; aud was checked to contain us.
        if claims.user.sub != session.tokens.user.sub || claims.issuer != state.config.issuer {
            return Ok(Outcome::Ended("subject_changed".into()));
        }
        // Group membership is re-checked: a user removed from the allowed
        // groups loses the session at the next refresh (`acr` describes the
        // original authentication and is only checked at login).
        let mut user = claims.user;
        if user.groups.is_none() {
            user.groups = session.tokens.user.groups.clone();
        }
        if !super::callback::in_allowed_groups(&state.config, &user.groups) {
            return Ok(Outcome::Ended("not_allowed".into()));
        }
        fresh.tokens.user = user;
        fresh.tokens.id_token = id_token;
        if claims.idp_sid.is_some() {
            fresh.tokens.idp_sid = claims.idp_sid;
        }
    }
    fresh.tokens.access_token = refreshed.access_token;
    fresh.tokens.access_expires_at = refreshed.access_expires_at;
    // No `refresh_token` in the answer (Authentik below its rotation
    // threshold): the old one stays valid and is kept.
    if let Some(rotated) = refreshed.refresh_token {
        fresh.refresh.refresh_token = Some(rotated);
    }
    Ok(Outcome::Refreshed(Box::new(fresh)))
}
