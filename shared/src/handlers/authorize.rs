//! `GET /auth/login`: starts a login. Checks `return_to`, creates the login
//! transaction (state, nonce, PKCE verifier) in the table, binds it to this
//! browser with the pre-auth cookie and redirects to the provider.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::{hit, limit_outcome};
use crate::audit::{self, Event};
use crate::cookies::{self, Scope};
use crate::edge::{self, Endpoint, Incoming, Reply};
use crate::error::AuthError;
use crate::oidc::{pkce_challenge, AuthorizationRequest};
use crate::ratelimit::EndpointClass;
use crate::secret::Secret;
use crate::session::{hash_key, now, random_token, UnixTime};
use crate::state::AppState;
use crate::store::{keys, Store};

/// How long a login may take at the provider.
pub const LOGIN_TTL_SECS: u64 = 600;
/// Logins pending at once in one browser (tabs); older ones drop out, so the
/// cookie stays small.
pub const MAX_PENDING: usize = 5;
/// The name sealed into transaction records (associated data).
pub(crate) const TX_SEAL_NAME: &str = "login-tx";

/// A login transaction as stored (sealed) in the table.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LoginTx {
    pub nonce: String,
    pub verifier: Secret,
    pub return_to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// The pre-auth cookie: hashes of this browser's pending states.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct PendingLogins {
    pub pending: Vec<Pending>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub state_hash: String,
    pub expires_at: UnixTime,
}

impl PendingLogins {
    /// Opens the cookie; a missing or unreadable one is an empty list.
    pub(crate) fn from_cookie(ring: &cookies::KeyRing, incoming: &Incoming, now: UnixTime) -> Self {
        let mut list = incoming
            .cookie(cookies::LOGIN)
            .and_then(|raw| ring.open_json::<PendingLogins>(cookies::LOGIN, &raw).ok())
            .unwrap_or_default();
        list.pending.retain(|p| p.expires_at > now);
        list
    }

    /// The `Set-Cookie` for this list (a deletion when empty).
    pub(crate) fn to_cookie(&self, ring: &cookies::KeyRing, now: UnixTime) -> String {
        match self.pending.iter().map(|p| p.expires_at).max() {
            Some(last) => cookies::set(
                cookies::LOGIN,
                ring.seal_json(cookies::LOGIN, self),
                last.saturating_sub(now),
                // The provider redirects back with a top-level GET: Lax suffices.
                Scope::FirstParty,
            ),
            None => cookies::clear(cookies::LOGIN, Scope::FirstParty),
        }
    }
}

/// Lambda entry point.
pub async fn handle<S: Store>(
    state: &AppState<S>,
    req: Request,
) -> Result<Response<Body>, Infallible> {
    edge::run(
        Endpoint::Login,
        &state.config.redirects,
        state.cookie_scope(),
        req,
        |incoming| login(state, incoming, now()),
    )
    .await
}

/// Starts a login.
pub async fn login<S: Store>(
    state: &AppState<S>,
    incoming: Incoming,
    now: UnixTime,
) -> Result<Reply, AuthError> {
    if incoming.method != http::Method::GET {
        return Err(AuthError::MethodNotAllowed);
    }
    let config = &state.config;
    let ctx = &incoming.audit;
    let return_to = match incoming.param("return_to") {
        Some(raw) => config.redirects.check(raw).map_err(|e| {
            audit::emit(ctx, Event::RedirectRejected { reason: e.reason() });
            AuthError::RedirectRefused
        })?,
        None => config.default_return_to.clone(),
    };
    let (mut extra, requested_max_age) = passthrough(state, &incoming)?;
    // Site policy: a configured MAX_AGE always applies; a request may only
    // make it stricter. REQUIRED_ACR is requested and later checked.
    let max_age = match (config.max_age, requested_max_age) {
        (Some(policy), Some(asked)) => Some(policy.min(asked)),
        (policy, asked) => policy.or(asked),
    };
    extra
        .retain(|(k, _)| *k != "max_age" && !(config.required_acr.is_some() && *k == "acr_values"));
    if let Some(max_age) = max_age {
        extra.push(("max_age", max_age.to_string()));
    }
    if let Some(acr) = &config.required_acr {
        extra.push(("acr_values", acr.join(" ")));
    }

    let login_state = random_token();
    let nonce = random_token();
    let verifier = random_token();
    // Discovery is cached; building the URL first means a dead provider
    // leaves nothing behind in the table.
    let url = state
        .oidc
        .authorization_url(&AuthorizationRequest {
            scopes: &config.scopes,
            state: &login_state,
            nonce: &nonce,
            code_challenge: pkce_challenge(&verifier),
            extra: &extra,
        })
        .await?;

    let tx = LoginTx {
        nonce,
        verifier: Secret::new(verifier),
        return_to: return_to.to_string(),
        max_age,
    };
    let sealed = config.cookie_keys.seal_json(TX_SEAL_NAME, &tx);
    let state_hash = hash_key(&login_state);
    let pk = format!("{}{}", keys::LOGIN, state_hash);
    let expires_at = now + LOGIN_TTL_SECS;
    // One round trip of latency: the counter and the transaction together.
    let (verdict, written) = tokio::join!(
        hit(state, EndpointClass::Login, ctx, now),
        state.store.insert_new(&pk, &sealed, expires_at, now)
    );
    limit_outcome(ctx, EndpointClass::Login, verdict)?;
    if !written? {
        // 256 random bits collided: practically impossible; refuse rather than reuse.
        return Err(AuthError::LoginFailed("state_collision"));
    }

    let mut pending = PendingLogins::from_cookie(&config.cookie_keys, &incoming, now);
    pending.pending.push(Pending {
        state_hash,
        expires_at,
    });
    let excess = pending.pending.len().saturating_sub(MAX_PENDING);
    pending.pending.drain(..excess);

    audit::emit(ctx, Event::LoginStarted);
    Ok(Reply::redirect(302, &url).with_cookies([pending.to_cookie(&config.cookie_keys, now)]))
}

/// Validated pass-through parameters, and `max_age` when one was sent.
type Passed = (Vec<(&'static str, String)>, Option<u64>);

/// Optional parameters forwarded to the provider, each validated; a
/// parameter the configuration does not allow is refused, not dropped, so
/// a site asking for `max_age` never silently loses it.
fn passthrough<S: Store>(state: &AppState<S>, incoming: &Incoming) -> Result<Passed, AuthError> {
    let allowed = &state.config.passthrough;
    let mut extra = Vec::new();
    let mut max_age = None;
    let printable = |v: &str| !v.is_empty() && v.len() <= 256 && v.chars().all(|c| !c.is_control());
    if let Some(prompt) = incoming.param("prompt") {
        let ok = prompt
            .split(' ')
            .all(|p| matches!(p, "none" | "login" | "consent" | "select_account"));
        if !allowed.prompt || !ok {
            return Err(AuthError::BadRequest("prompt"));
        }
        extra.push(("prompt", prompt.to_owned()));
    }
    if let Some(hint) = incoming.param("login_hint") {
        if !allowed.login_hint || !printable(hint) {
            return Err(AuthError::BadRequest("login_hint"));
        }
        extra.push(("login_hint", hint.to_owned()));
    }
    if let Some(raw) = incoming.param("max_age") {
        let value = raw
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= 31_536_000 && allowed.max_age);
        let Some(value) = value else {
            return Err(AuthError::BadRequest("max_age"));
        };
        extra.push(("max_age", value.to_string()));
        max_age = Some(value);
    }
    if let Some(acr) = incoming.param("acr_values") {
        if !allowed.acr_values || !printable(acr) || !acr.is_ascii() {
            return Err(AuthError::BadRequest("acr_values"));
        }
        extra.push(("acr_values", acr.to_owned()));
    }
    Ok((extra, max_age))
}
