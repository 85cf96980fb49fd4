//! `POST /auth/logout`: ends the session for real. Revokes the refresh token
//! at the provider (RFC 7009), records the session id as revoked until its
//! absolute end (so a copied cookie stops working at once), clears every
//! cookie and returns the provider's end-session URL.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};

use super::{clear_session_cookies, hit, limit_outcome, open_session};
use crate::audit::{self, Event};
use crate::edge::{self, Endpoint, Incoming, Reply};
use crate::error::AuthError;
use crate::oidc::IdpError;
use crate::ratelimit::EndpointClass;
use crate::session::{hash_key, now, UnixTime};
use crate::state::AppState;
use crate::store::{keys, Store};

/// Lambda entry point.
pub async fn handle<S: Store>(
    state: &AppState<S>,
    req: Request,
) -> Result<Response<Body>, Infallible> {
    edge::run(
        Endpoint::Logout,
        &state.config.redirects,
        state.cookie_scope(),
        req,
        |incoming| async move {
            match (incoming.method.clone(), incoming.path.trim_end_matches('/')) {
                (http::Method::POST, p) if p.ends_with("/backchannel-logout") => {
                    backchannel(state, incoming, now()).await
                }
                (http::Method::POST, p) if p.ends_with("/logout") => {
                    logout(state, incoming, now()).await
                }
                (_, p) if p.ends_with("logout") => Err(AuthError::MethodNotAllowed),
                _ => Err(AuthError::NotFound),
            }
        },
    )
    .await
}

/// Logs out.
pub async fn logout<S: Store>(
    state: &AppState<S>,
    incoming: Incoming,
    now: UnixTime,
) -> Result<Reply, AuthError> {
    incoming.check_csrf(&state.config.redirects)?;
    let ctx = &incoming.audit;
    // Even a timed-out session is ended properly: its refresh token still
    // lives at the provider.
    let session = open_session(state, &incoming).ok();
    let id_token_hint = session.as_ref().map(|s| s.tokens.id_token.clone());

    let revoke_record = async {
        match &session {
            Some(s) => {
                let pk = format!("{}{}", keys::REVOKED, s.marker.sid);
                state
                    .store
                    .put(&pk, "logout", s.marker.expires_at.max(now + 1))
                    .await
            }
            None => Ok(()),
        }
    };
    let revoke_at_provider = async {
        match session
            .as_ref()
            .and_then(|s| s.refresh.refresh_token.as_ref())
        {
            Some(token) => state.oidc.revoke(token).await.map(|_| ()),
            None => Ok(()),
        }
    };
    // Independent calls run together: counter, revocation record, provider.
    let (verdict, recorded, revoked) = tokio::join!(
        hit(state, EndpointClass::Logout, ctx, now),
        revoke_record,
        revoke_at_provider
    );
    limit_outcome(ctx, EndpointClass::Logout, verdict)?;
    recorded?;
    if let Err(e) = revoked {
        // The session is already dead on our side; the provider's refresh
        // token expires on its own. Report it, but finish the logout.
        tracing::warn!(error = %e, "refresh token revocation failed");
        audit::emit(
            ctx,
            Event::DependencyFailed {
                dependency: "identity_provider",
            },
        );
    }

    let logout_url = state
        .oidc
        .end_session_url(
            id_token_hint.as_ref(),
            &state.config.post_logout_redirect_uri,
        )
        .await
        .ok()
        .flatten();
    audit::emit(
        ctx,
        Event::Logout {
            sub: session.as_ref().map(|s| s.tokens.user.sub.as_str()),
        },
    );

    let mut cookies = clear_session_cookies(state.cookie_scope());
    cookies.push(crate::cookies::clear(
        crate::cookies::LOGIN,
        crate::cookies::Scope::FirstParty,
    ));
    for pattern in &state.config.protected_paths {
        let path = crate::cloudfront::cookie_path(pattern);
        for name in [
            crate::cloudfront::POLICY,
            crate::cloudfront::SIGNATURE,
            crate::cloudfront::KEY_PAIR_ID,
        ] {
            cookies.push(crate::cookies::clear_at(name, &path));
        }
    }
    let target = logout_url
        .clone()
        .unwrap_or_else(|| state.config.post_logout_redirect_uri.clone());
    let mut reply = if incoming.prefers_html() {
        Reply::redirect(303, &target)
    } else {
        Reply::json(&serde_json::json!({ "logout_url": logout_url.as_ref().map(|u| u.as_str()) }))
    };
    reply
        .headers
        .push(("clear-site-data", "\"cookies\"".into()));
    Ok(reply.with_cookies(cookies))
}

/// `POST /auth/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0):
/// the provider, server to server, ends the sessions a logout token names.
/// No CSRF header here: the signed logout token is the proof.
pub async fn backchannel<S: Store>(
    state: &AppState<S>,
    incoming: Incoming,
    now: UnixTime,
) -> Result<Reply, AuthError> {
    let ctx = &incoming.audit;
    limit_outcome(
        ctx,
        EndpointClass::Backchannel,
        hit(state, EndpointClass::Backchannel, ctx, now).await,
    )?;
    let form = crate::edge::parse_query(
        std::str::from_utf8(&incoming.body).map_err(|_| AuthError::BadRequest("body"))?,
    )
    .map_err(AuthError::BadRequest)?;
    let Some(raw) = form.get("logout_token").filter(|t| !t.is_empty()) else {
        audit::emit(
            ctx,
            Event::BackchannelRejected {
                reason: "no_logout_token",
            },
        );
        return Err(AuthError::BadRequest("logout_token"));
    };
    let claims = match state.oidc.validate_logout_token(raw, now).await {
        Ok(c) => c,
        Err(IdpError::InvalidAnswer(reason)) => {
            audit::emit(ctx, Event::BackchannelRejected { reason });
            return Err(AuthError::BadRequest("logout_token"));
        }
        Err(e) => return Err(e.into()),
    };
    // Replay guard: a `jti` is accepted once while the token could be valid.
    let jti_key = format!(
        "{}{}",
        keys::JTI,
        hash_key(&format!("{}:{}", state.config.issuer, claims.jti))
    );
    let ttl = crate::oidc::logout_token::MAX_AGE_SECS * 2;
    if !state.store.insert_new(&jti_key, "", now + ttl, now).await? {
        audit::emit(
            ctx,
            Event::BackchannelRejected {
                reason: "replayed_jti",
            },
        );
        return Err(AuthError::BadRequest("logout_token"));
    }
    // Sessions live at most the absolute timeout, so the record may go then.
    let until = now + state.config.absolute_timeout.as_secs();
    match (&claims.sid, &claims.sub) {
        // `sid` names one provider session: end the sessions started from it.
        (Some(sid), _) => {
            let pk = format!("{}{}", keys::REVOKED_IDP_SID, hash_key(sid));
            state.store.put(&pk, "backchannel", until).await?;
        }
        // Only `sub`: every session of that user created until now ends.
        (None, Some(sub)) => {
            let pk = format!("{}{}", keys::REVOKED_SUB, hash_key(sub));
            state.store.put(&pk, &now.to_string(), until).await?;
        }
        (None, None) => return Err(AuthError::BadRequest("logout_token")),
    }
    audit::emit(
        ctx,
        Event::BackchannelLogout {
            sub: claims.sub.as_deref(),
        },
    );
    Ok(Reply {
        status: 200,
        ..Reply::default()
    })
}
