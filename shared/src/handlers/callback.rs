//! `GET /auth/callback`: the provider's redirect target. Checks the browser
//! binding, consumes the login transaction once, checks `iss` (RFC 9207),
//! exchanges the code with the PKCE verifier, validates the ID token, starts
//! a fresh session and hands it off (cookies or a one-time exchange code).

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use url::Url;

use super::authorize::{LoginTx, PendingLogins, TX_SEAL_NAME};
use super::{hit, limit_outcome, session_cookies};
use crate::audit::{self, Event};
use crate::config::Handoff;
use crate::edge::{self, Endpoint, Incoming, Reply};
use crate::error::AuthError;
use crate::oidc::{Expected, IdpError};
use crate::ratelimit::EndpointClass;
use crate::secret::Secret;
use crate::session::{hash_key, now, random_token, Marker, Refresh, Session, Tokens, UnixTime};
use crate::state::AppState;
use crate::store::{keys, Store};

/// The name sealed into exchange records (associated data).
pub(crate) const EXCHANGE_SEAL_NAME: &str = "exchange";

/// Longest `code` or `state` accepted from the query.
const MAX_PARAM_LEN: usize = 2048;

/// Lambda entry point.
pub async fn handle<S: Store>(
    state: &AppState<S>,
    req: Request,
) -> Result<Response<Body>, Infallible> {
    edge::run(
        Endpoint::Callback,
        &state.config.redirects,
        state.cookie_scope(),
        req,
        |incoming| async move {
            let ctx = incoming.audit.clone();
            let result = callback(state, incoming, now()).await;
            match &result {
                Err(AuthError::Idp(
                    IdpError::InvalidAnswer(reason) | IdpError::Rejected(reason),
                )) => audit::emit(&ctx, Event::LoginFailed { reason, sub: None }),
                Err(AuthError::LoginFailed(reason)) => {
                    audit::emit(&ctx, Event::LoginFailed { reason, sub: None })
                }
                Err(AuthError::ProviderDenied(_)) => audit::emit(
                    &ctx,
                    Event::LoginFailed {
                        reason: "provider_error",
                        sub: None,
                    },
                ),
                _ => {}
            }
            result.map(|mut reply| {
                // The callback URL held a code: never leak it onward.
                reply
                    .headers
                    .push(("referrer-policy", "no-referrer".into()));
                reply
            })
        },
    )
    .await
}

/// OAuth error codes a provider may send back that we pass on as they are.
fn provider_error(code: &str) -> &'static str {
    match code {
        "access_denied" => "access_denied",
        "login_required" => "login_required",
        "consent_required" => "consent_required",
        "interaction_required" => "interaction_required",
        "account_selection_required" => "account_selection_required",
        "temporarily_unavailable" => "temporarily_unavailable",
        _ => "access_denied",
    }
}

/// Completes a login.
pub async fn callback<S: Store>(
    state: &AppState<S>,
    incoming: Incoming,
    now: UnixTime,
) -> Result<Reply, AuthError> {
    if incoming.method != http::Method::GET {
        return Err(AuthError::MethodNotAllowed);
    }
    let config = &state.config;
    let ctx = &incoming.audit;
    let login_state = incoming
        .param("state")
        .filter(|s| !s.is_empty() && s.len() <= MAX_PARAM_LEN)
        .ok_or(AuthError::BadRequest("state"))?;
    let state_hash = hash_key(login_state);

    // Login CSRF defence: this browser must have started this login.
    let mut pending = PendingLogins::from_cookie(&config.cookie_keys, &incoming, now);
    let Some(position) = pending
        .pending
        .iter()
        .position(|p| p.state_hash == state_hash)
    else {
        return Err(AuthError::LoginFailed("browser_binding"));
    };
    pending.pending.remove(position);

    // One round trip: the counter, and the transaction consumed with one
    // conditional delete (a second callback with this state finds nothing).
    let pk = format!("{}{}", keys::LOGIN, state_hash);
    let (verdict, taken) = tokio::join!(
        hit(state, EndpointClass::Callback, ctx, now),
        state.store.take(&pk, now)
    );
    limit_outcome(ctx, EndpointClass::Callback, verdict)?;
    let tx: LoginTx = taken?
        .and_then(|sealed| config.cookie_keys.open_json(TX_SEAL_NAME, &sealed).ok())
        .ok_or(AuthError::LoginFailed("unknown_or_used_state"))?;

    if let Some(error) = incoming.param("error") {
        return Err(AuthError::ProviderDenied(provider_error(error)));
    }
    // RFC 9207: a present `iss` must be ours; a provider that promises it must send it.
    match incoming.param("iss") {
        Some(iss) if iss != config.issuer => return Err(AuthError::LoginFailed("iss_mismatch")),
        None if state.oidc.expects_iss_parameter().await? => {
            return Err(AuthError::LoginFailed("iss_missing"))
        }
        _ => {}
    }
    let code = incoming
        .param("code")
        .filter(|c| !c.is_empty() && c.len() <= MAX_PARAM_LEN)
        .ok_or(AuthError::BadRequest("code"))?;

    let tokens = state
        .oidc
        .exchange_code(
            &Secret::new(code),
            &tx.verifier,
            Expected {
                issuer: &config.issuer,
                client_id: &config.client_id,
                nonce: Some(&tx.nonce),
                max_age: tx.max_age,
                now,
            },
        )
        .await?;
    if let Err(reason) = admits(
        config,
        &tokens.claims.user.groups,
        tokens.claims.acr.as_deref(),
    ) {
        audit::emit(
            ctx,
            Event::LoginFailed {
                reason,
                sub: Some(&tokens.claims.user.sub),
            },
        );
        return Err(AuthError::NotAllowed(reason));
    }

    // A fresh id: never one that existed before the login (session fixation).
    let sid = random_token();
    let session = Session {
        marker: Marker {
            sid: sid.clone(),
            created_at: now,
            last_seen: now,
            expires_at: now + config.absolute_timeout.as_secs(),
        },
        tokens: Tokens {
            sid: sid.clone(),
            user: tokens.claims.user.clone(),
            idp_sid: tokens.claims.idp_sid.clone(),
            access_token: tokens.access_token,
            access_expires_at: tokens.access_expires_at,
            id_token: tokens.id_token,
        },
        refresh: Refresh {
            sid,
            refresh_token: tokens.refresh_token,
        },
    };
    let return_to = Url::parse(&tx.return_to).map_err(|_| AuthError::LoginFailed("return_to"))?;
    let binding = pending.to_cookie(&config.cookie_keys, now);
    let sub = session.tokens.user.sub.clone();

    let reply = match config.handoff {
        Handoff::Cookie => {
            let mut cookies = session_cookies(state, &session, now, &incoming)?;
            cookies.extend(cloudfront_cookies(config, now, session.marker.expires_at));
            Reply::redirect(302, &return_to).with_cookies(cookies)
        }
        Handoff::Exchange => {
            // Only a hash of the code is stored; the code travels in the
            // fragment, which browsers never send to servers or in Referer.
            let code = random_token();
            let sealed = config.cookie_keys.seal_json(EXCHANGE_SEAL_NAME, &session);
            let pk = format!("{}{}", keys::EXCHANGE, hash_key(&code));
            let expires_at = now + config.exchange_code_ttl.as_secs();
            if !state
                .store
                .insert_new(&pk, &sealed, expires_at, now)
                .await?
            {
                return Err(AuthError::LoginFailed("exchange_collision"));
            }
            let mut target = return_to;
            target.set_fragment(Some(&format!("code={code}")));
            Reply::redirect(302, &target)
        }
    };
    audit::emit(ctx, Event::LoginSucceeded { sub: &sub });
    Ok(reply.with_cookies([binding]))
}

/// The site's access policy: `ALLOWED_GROUPS` (any one of them) and
/// `REQUIRED_ACR` (one of the listed values). `Err` names what failed.
pub(crate) fn admits(
    config: &crate::config::Config,
    groups: &Option<Vec<String>>,
    acr: Option<&str>,
) -> Result<(), &'static str> {
    if !in_allowed_groups(config, groups) {
        return Err("group_not_allowed");
    }
    if let Some(required) = &config.required_acr {
        if !acr.is_some_and(|a| required.iter().any(|r| r == a)) {
            return Err("acr_not_satisfied");
        }
    }
    Ok(())
}

/// Whether `groups` meets `ALLOWED_GROUPS` (always, when none is configured).
pub(crate) fn in_allowed_groups(
    config: &crate::config::Config,
    groups: &Option<Vec<String>>,
) -> bool {
    config.allowed_groups.as_ref().is_none_or(|allowed| {
        groups
            .as_ref()
            .is_some_and(|mine| mine.iter().any(|g| allowed.contains(g)))
    })
}

/// `Set-Cookie` values for CloudFront's protected paths (cookie hand-off
/// only: in exchange mode the API's cookies never reach the site's CloudFront).
pub(crate) fn cloudfront_cookies(
    config: &crate::config::Config,
    now: UnixTime,
    session_expires_at: UnixTime,
) -> Vec<String> {
    let Some(signer) = &config.cloudfront else {
        return Vec::new();
    };
    signer
        .sign(now, session_expires_at)
        .into_iter()
        .flat_map(|set| {
            let max_age = set.expires_at.saturating_sub(now);
            let path = set.path.clone();
            set.values
                .into_iter()
                .map(move |(name, value)| crate::cookies::set_at(name, value, &path, max_age))
        })
        .collect()
}
