//! ID token validation (OpenID Connect Core 3.1.3.7) on top of the
//! `openidconnect` crate's verifier, plus the checks it leaves to us (`azp`,
//! `iat` in the future, `auth_time` for `max_age`).
//!
//! Secure defaults: only asymmetric algorithms are accepted, so `alg: none`
//! and HMAC "signed" with the provider's public key are refused; the header's
//! `jku`, `x5u` and `jwk` are never used to find a key, only our cached JWKS.

use std::str::FromStr;

use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, ClaimsVerificationError, ClientId, IdTokenVerifier, IssuerUrl, Nonce,
    SignatureVerificationError,
};
use serde::{Deserialize, Serialize};

use super::jwk::ProviderKeySet;
use crate::session::{UnixTime, User};

/// Tolerated clock difference with the provider.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// Claims beyond the standard ones that we read.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    /// Group names (Authentik, Keycloak with a groups mapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The provider's session id (OIDC Front/Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}
impl AdditionalClaims for ExtraClaims {}

type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// What the caller expects of this token.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The exact issuer.
    pub issuer: &'a str,
    /// Our client id (must be the audience, and `azp` when present).
    pub client_id: &'a str,
    /// The login's nonce; `None` for tokens from a refresh.
    pub nonce: Option<&'a str>,
    /// `max_age` sent at login: `auth_time` must be present and recent enough.
    pub max_age: Option<u64>,
    /// The current time.
    pub now: UnixTime,
}

/// The validated claims we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    /// `iss`.
    pub issuer: String,
    /// The user, `sub` included.
    pub user: User,
    /// Audiences (ours among them).
    pub audiences: Vec<String>,
    /// The provider's session id.
    pub idp_sid: Option<String>,
    /// `auth_time`, when present.
    pub auth_time: Option<UnixTime>,
    /// `acr`, when present.
    pub acr: Option<String>,
    /// `exp`.
    pub expires_at: UnixTime,
}

/// Why a token was refused. `reason` is a fixed string for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// The `kid` (or the only key) is not in the JWKS: refetch once, then retry.
    #[error("no matching key")]
    NoMatchingKey,
    /// Invalid for the given reason.
    #[error("invalid ID token: {0}")]
    Invalid(&'static str),
}

fn timestamp(t: UnixTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(i64::try_from(t).unwrap_or(i64::MAX), 0).unwrap_or_default()
}

fn secs(t: chrono::DateTime<chrono::Utc>) -> UnixTime {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

/// Validates `raw` against the keys and returns its claims.
pub fn validate(
    raw: &str,
    expected: Expected<'_>,
    keys: &ProviderKeySet,
    algorithms: &[CoreJwsSigningAlgorithm],
) -> Result<IdClaims, IdTokenError> {
    let token = IdToken::from_str(raw).map_err(|_| IdTokenError::Invalid("unparseable"))?;
    let issuer =
        IssuerUrl::new(expected.issuer.to_owned()).map_err(|_| IdTokenError::Invalid("issuer"))?;
    let now = expected.now;
    let max_age = expected.max_age;
    let verifier = IdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_owned()),
        issuer,
        keys.clone(),
    )
    // Public-client mode: no client secret, so HS* is refused outright.
    .set_allowed_algs(algorithms.iter().filter(|a| is_asymmetric(a)).cloned())
    .set_time_fn(move || timestamp(now))
    .set_issue_time_verifier_fn(move |iat| {
        if secs(iat) > now.saturating_add(CLOCK_SKEW_SECS) {
            Err("issued in the future".to_owned())
        } else {
            Ok(())
        }
    })
    .set_auth_time_verifier_fn(move |auth_time| match (max_age, auth_time) {
        (None, _) => Ok(()),
        (Some(_), None) => Err("auth_time missing although max_age was sent".to_owned()),
        (Some(max), Some(t))
            if secs(t).saturating_add(max).saturating_add(CLOCK_SKEW_SECS) < now =>
        {
            Err("authentication older than max_age".to_owned())
        }
        (Some(_), Some(_)) => Ok(()),
    });

    let nonce = expected.nonce.map(|n| Nonce::new(n.to_owned()));
    let claims = match &nonce {
        Some(n) => token.claims(&verifier, n),
        // After a refresh there is no nonce to compare (OIDC Core 12.2).
        None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(classify)?;

    let audiences: Vec<String> = claims.audiences().iter().map(|a| a.to_string()).collect();
    // OIDC Core 3.1.3.7 steps 4-5: with several audiences `azp` must be
    // present, and when present it must be us.
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != expected.client_id => {
            return Err(IdTokenError::Invalid("azp"))
        }
        None if audiences.len() > 1 => return Err(IdTokenError::Invalid("azp")),
        _ => {}
    }
    if claims.subject().is_empty() {
        return Err(IdTokenError::Invalid("sub"));
    }

    let extra = claims.additional_claims();
    Ok(IdClaims {
        issuer: claims.issuer().to_string(),
        user: User {
            sub: claims.subject().to_string(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            email: claims.email().map(|e| e.to_string()),
            preferred_username: claims.preferred_username().map(|u| u.to_string()),
            groups: extra.groups.clone(),
        },
        audiences,
        idp_sid: extra.sid.clone(),
        auth_time: claims.auth_time().map(secs),
        acr: claims.auth_context_ref().map(|a| a.to_string()),
        expires_at: secs(claims.expiration()),
    })
}

/// Whether an algorithm is a public-key signature (never `none`, never HMAC).
pub(crate) fn is_asymmetric(alg: &CoreJwsSigningAlgorithm) -> bool {
    use CoreJwsSigningAlgorithm as A;
    matches!(
        alg,
        A::RsaSsaPkcs1V15Sha256
            | A::RsaSsaPkcs1V15Sha384
            | A::RsaSsaPkcs1V15Sha512
            | A::RsaSsaPssSha256
            | A::RsaSsaPssSha384
            | A::RsaSsaPssSha512
            | A::EcdsaP256Sha256
            | A::EcdsaP384Sha384
            | A::EcdsaP521Sha512
            | A::EdDsa
    )
}

fn classify(err: ClaimsVerificationError) -> IdTokenError {
    use ClaimsVerificationError as E;
    match err {
        E::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
            IdTokenError::NoMatchingKey
        }
        E::SignatureVerification(SignatureVerificationError::DisallowedAlg(_)) => {
            IdTokenError::Invalid("alg")
        }
        E::SignatureVerification(SignatureVerificationError::AmbiguousKeyId(_)) => {
            IdTokenError::Invalid("ambiguous_key")
        }
        E::SignatureVerification(_) => IdTokenError::Invalid("signature"),
        E::InvalidIssuer(_) => IdTokenError::Invalid("iss"),
        E::InvalidAudience(_) => IdTokenError::Invalid("aud"),
        E::Expired(_) => IdTokenError::Invalid("exp_or_iat"),
        E::InvalidNonce(_) => IdTokenError::Invalid("nonce"),
        E::InvalidAuthTime(_) => IdTokenError::Invalid("auth_time"),
        E::InvalidAuthContext(_) => IdTokenError::Invalid("acr"),
        _ => IdTokenError::Invalid("claims"),
    }
}

#[cfg(test)]
mod tests;
