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
use crate::ratelimit::EndpointClass;
use crate::session::{now, UnixTime};
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
                (http::Method::POST, p) if p.ends_with("/logout") => {
                    logout(state, incoming, now()).await
                }
                (_, p) if p.ends_with("/logout") => Err(AuthError::MethodNotAllowed),
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
