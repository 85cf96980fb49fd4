//! Logout token validation (OpenID Connect Back-Channel Logout 1.0, 2.6).
//!
//! The JWS signature is checked with `openidconnect`'s key implementation
//! against our cached JWKS; only asymmetric algorithms are accepted, and the
//! header's `jku`, `x5u` and `jwk` are ignored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{JsonWebKey, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm};
use serde::Deserialize;
use serde_json::Value;

use super::id_token::{is_asymmetric, IdTokenError, CLOCK_SKEW_SECS};
use super::jwk::ProviderKeySet;
use crate::session::UnixTime;

/// The event that marks a logout token (2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Logout tokens older than this are refused, which bounds how long a `jti`
/// must be remembered.
pub const MAX_AGE_SECS: u64 = 300;

/// What a valid logout token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// The user, when named.
    pub sub: Option<String>,
    /// The provider's session, when named.
    pub sid: Option<String>,
    /// The token's id, for replay protection.
    pub jti: String,
}

#[derive(Deserialize)]
struct Header {
    alg: CoreJwsSigningAlgorithm,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: Value,
    iat: UnixTime,
    #[serde(default)]
    exp: Option<UnixTime>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    nonce: Option<Value>,
}

const INVALID: fn(&'static str) -> IdTokenError = IdTokenError::Invalid;

/// Validates a logout token for `client_id` from `issuer`.
pub fn validate(
    raw: &str,
    issuer: &str,
    client_id: &str,
    now: UnixTime,
    keys: &ProviderKeySet,
    algorithms: &[CoreJwsSigningAlgorithm],
) -> Result<LogoutClaims, IdTokenError> {
    let mut parts = raw.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(INVALID("unparseable"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| INVALID("unparseable"))
    };
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| INVALID("unparseable"))?;
    let signature = decode(signature_b64)?;

    if !is_asymmetric(&header.alg) || !algorithms.contains(&header.alg) {
        return Err(INVALID("alg"));
    }
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("logout+jwt") && !t.eq_ignore_ascii_case("jwt"))
    {
        return Err(INVALID("typ"));
    }
    let kid = header.kid.map(JsonWebKeyId::new);
    let candidates: Vec<_> = keys
        .keys()
        .iter()
        .filter(|k| kid.is_none() || k.key_id() == kid.as_ref())
        .filter(|k| k.key_use().is_none_or(|u| u.allows_signature()))
        .filter(|k| header.alg.key_type().as_ref() == Some(k.key_type()))
        .collect();
    let key = match candidates.as_slice() {
        [] => return Err(IdTokenError::NoMatchingKey),
        [one] => *one,
        _ => return Err(INVALID("ambiguous_key")),
    };
    let signing_input = format!("{header_b64}.{payload_b64}");
    key.verify_signature(&header.alg, signing_input.as_bytes(), &signature)
        .map_err(|_| INVALID("signature"))?;

    let claims: Claims =
        serde_json::from_slice(&decode(payload_b64)?).map_err(|_| INVALID("claims"))?;
    if claims.iss != issuer {
        return Err(INVALID("iss"));
    }
    let audience_ok = match &claims.aud {
        Value::String(a) => a == client_id,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(INVALID("aud"));
    }
    // Saturating: the claims are the provider's (or an attacker's) numbers.
    if claims.iat > now.saturating_add(CLOCK_SKEW_SECS)
        || claims.iat.saturating_add(MAX_AGE_SECS) < now
    {
        return Err(INVALID("iat"));
    }
    if claims
        .exp
        .is_some_and(|exp| exp.saturating_add(CLOCK_SKEW_SECS) <= now)
    {
        return Err(INVALID("exp"));
    }
    let has_event = claims
        .events
        .as_ref()
        .and_then(|e| e.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object);
    if !has_event {
        return Err(INVALID("events"));
    }
    // 2.4: a logout token must not carry a nonce, so an ID token can never
    // be replayed as one.
    if claims.nonce.is_some() {
        return Err(INVALID("nonce"));
    }
    let jti = claims.jti.filter(|j| !j.is_empty()).ok_or(INVALID("jti"))?;
    let sub = claims.sub.filter(|s| !s.is_empty());
    let sid = claims.sid.filter(|s| !s.is_empty());
    if sub.is_none() && sid.is_none() {
        return Err(INVALID("sub_or_sid"));
    }
    Ok(LogoutClaims { sub, sid, jti })
}

#[cfg(test)]
mod tests;
