//! The OpenID Connect client: discovery and JWKS (cached across warm
//! invocations), the authorization URL, the token, refresh and revocation
//! calls, and ID token validation.
//!
//! Owns every call to the provider. Never logs a token, code or secret, and
//! never puts a provider response body into an error (token responses carry
//! tokens).

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl, JsonWebKeySet, ProviderMetadata};
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, RwLock};
use url::Url;

use self::jwk::{ProviderKey, ProviderKeySet};
use crate::secret::Secret;
use crate::session::UnixTime;

pub mod http;
pub mod id_token;
pub mod jwk;
pub mod logout_token;
#[cfg(test)]
mod test_jwt;
pub mod token;

pub use id_token::{Expected, IdClaims, IdTokenError};
pub use token::TokenSet;

/// Connect timeout for provider calls.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Total timeout of one provider call; the function's timeout is longer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// An unknown `kid` refetches the JWKS at most this often, so forged tokens
/// cannot make us hammer the provider.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// What went wrong talking to the provider. Fixed reasons; no bodies.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// Unreachable, timed out, 5xx, or an unparseable answer.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The metadata is unusable (issuer mismatch, no S256, ...).
    #[error("provider metadata refused: {0}")]
    Metadata(&'static str),
    /// The provider refused the grant (`invalid_grant` and friends).
    #[error("provider refused the grant: {0}")]
    Rejected(&'static str),
    /// The provider answered with a token we must not accept.
    #[error("provider answer invalid: {0}")]
    InvalidAnswer(&'static str),
}

/// Discovery fields beyond OIDC Discovery 1.0 that we rely on.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RFC 8414: must list `S256`.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 7009 revocation endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RP-Initiated Logout 1.0.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// RFC 9207.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    ProviderKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The endpoints and algorithms we use, checked once.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Authorization endpoint.
    pub authorization_endpoint: Url,
    /// Token endpoint.
    pub token_endpoint: Url,
    /// RFC 7009 revocation endpoint, if any.
    pub revocation_endpoint: Option<Url>,
    /// End-session endpoint, if any.
    pub end_session_endpoint: Option<Url>,
    /// JWKS location.
    pub jwks_uri: openidconnect::JsonWebKeySetUrl,
    /// Asymmetric ID token algorithms the provider uses.
    pub signing_algorithms: Vec<CoreJwsSigningAlgorithm>,
    /// Whether the provider promises `iss` in authorization responses.
    pub iss_parameter_supported: bool,
}

impl Provider {
    /// Checks metadata (already issuer-checked by discovery) for what we need.
    pub fn from_metadata(meta: &Metadata) -> Result<Self, IdpError> {
        let extra = meta.additional_metadata();
        let s256 = extra
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"));
        if !s256 {
            // Without S256 we would fall back to `plain` or no PKCE at all.
            return Err(IdpError::Metadata(
                "code_challenge_methods_supported lacks S256",
            ));
        }
        let token_endpoint = meta
            .token_endpoint()
            .map(|u| u.url().clone())
            .ok_or(IdpError::Metadata("no token_endpoint"))?;
        let optional =
            |raw: &Option<String>, what: &'static str| -> Result<Option<Url>, IdpError> {
                raw.as_deref()
                    .map(|u| Url::parse(u).map_err(|_| IdpError::Metadata(what)))
                    .transpose()
            };
        Ok(Self {
            authorization_endpoint: meta.authorization_endpoint().url().clone(),
            token_endpoint,
            revocation_endpoint: optional(&extra.revocation_endpoint, "revocation_endpoint")?,
            end_session_endpoint: optional(&extra.end_session_endpoint, "end_session_endpoint")?,
            jwks_uri: meta.jwks_uri().clone(),
            signing_algorithms: meta.id_token_signing_alg_values_supported().clone(),
            iss_parameter_supported: extra
                .authorization_response_iss_parameter_supported
                .unwrap_or(false),
        })
    }
}

/// Client credentials and the registered redirect URI.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Exact issuer.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (absent in functions that never call the token endpoint).
    pub client_secret: Option<Secret>,
    /// Registered redirect URI.
    pub redirect_uri: Url,
}

#[derive(Debug)]
struct Keys {
    set: Arc<ProviderKeySet>,
    fetched: std::time::Instant,
    /// Fetched because a token named an unknown key (not by discovery):
    /// only such refetches are rate-limited, so a key rotated right after a
    /// cold start is still picked up.
    for_unknown_key: bool,
}

/// The provider client with its caches; built once per cold start.
#[derive(Debug)]
pub struct Oidc {
    http: http::HttpClient,
    settings: ClientSettings,
    provider: OnceCell<Provider>,
    keys: RwLock<Option<Keys>>,
}

impl Oidc {
    /// A client that has not contacted the provider yet.
    pub fn new(settings: ClientSettings) -> Result<Self, IdpError> {
        let http = http::HttpClient::new(CONNECT_TIMEOUT, REQUEST_TIMEOUT)
            .map_err(|e| IdpError::Unavailable(e.to_string()))?;
        Ok(Self {
            http,
            settings,
            provider: OnceCell::new(),
            keys: RwLock::new(None),
        })
    }

    /// The client settings.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Loads metadata and keys now, so the first login does not pay for it;
    /// a failure is left for the first request to retry.
    pub async fn prefetch(&self) {
        if let Err(e) = self.provider().await {
            tracing::warn!(error = %e, "provider discovery failed at init; will retry on first use");
        }
    }

    /// Discovery, cached for the life of the process. A failed attempt is
    /// not cached, so the next request retries.
    pub async fn provider(&self) -> Result<&Provider, IdpError> {
        self.provider
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.settings.issuer.clone())
                    .map_err(|_| IdpError::Metadata("issuer is not a URL"))?;
                // `discover_async` refuses metadata whose `issuer` is not
                // exactly ours (OIDC Discovery 4.3) and fetches the JWKS.
                let meta = Metadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(discovery_error)?;
                let provider = Provider::from_metadata(&meta)?;
                *self.keys.write().await = Some(Keys {
                    set: Arc::new(JsonWebKeySet::new(meta.jwks().keys().clone())),
                    fetched: std::time::Instant::now(),
                    for_unknown_key: false,
                });
                Ok(provider)
            })
            .await
    }

    async fn current_keys(&self) -> Result<Arc<ProviderKeySet>, IdpError> {
        if let Some(k) = self.keys.read().await.as_ref() {
            return Ok(k.set.clone());
        }
        self.refetch_keys(true).await
    }

    /// Refetches the JWKS unless it was fetched very recently.
    async fn refetch_keys(&self, force: bool) -> Result<Arc<ProviderKeySet>, IdpError> {
        let provider = self.provider().await?;
        let mut guard = self.keys.write().await;
        if let Some(k) = guard.as_ref() {
            if !force && k.for_unknown_key && k.fetched.elapsed() < JWKS_REFETCH_INTERVAL {
                return Ok(k.set.clone());
            }
        }
        let set = JsonWebKeySet::fetch_async(&provider.jwks_uri, &self.http)
            .await
            .map_err(discovery_error)?;
        let set = Arc::new(set);
        *guard = Some(Keys {
            set: set.clone(),
            fetched: std::time::Instant::now(),
            for_unknown_key: !force,
        });
        Ok(set)
    }

    /// Validates an ID token; an unknown key refetches the JWKS once.
    pub async fn validate_id_token(
        &self,
        raw: &str,
        expected: Expected<'_>,
    ) -> Result<IdClaims, IdpError> {
        let provider = self.provider().await?;
        let algorithms = if provider.signing_algorithms.is_empty() {
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
        } else {
            provider.signing_algorithms.clone()
        };
        let keys = self.current_keys().await?;
        match id_token::validate(raw, expected, &keys, &algorithms) {
            Err(IdTokenError::NoMatchingKey) => {
                // The provider may have rotated its signing key: refetch once.
                let keys = self.refetch_keys(false).await?;
                id_token::validate(raw, expected, &keys, &algorithms).map_err(invalid)
            }
            other => other.map_err(invalid),
        }
    }

    /// Validates a back-channel logout token; an unknown key refetches the JWKS once.
    pub async fn validate_logout_token(
        &self,
        raw: &str,
        now: UnixTime,
    ) -> Result<logout_token::LogoutClaims, IdpError> {
        let provider = self.provider().await?;
        let algorithms = if provider.signing_algorithms.is_empty() {
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
        } else {
            provider.signing_algorithms.clone()
        };
        let (issuer, client_id) = (&self.settings.issuer, &self.settings.client_id);
        let keys = self.current_keys().await?;
        match logout_token::validate(raw, issuer, client_id, now, &keys, &algorithms) {
            Err(IdTokenError::NoMatchingKey) => {
                let keys = self.refetch_keys(false).await?;
                logout_token::validate(raw, issuer, client_id, now, &keys, &algorithms)
                    .map_err(invalid)
            }
            other => other.map_err(invalid),
        }
    }

    /// The URL to send the browser to for login.
    pub async fn authorization_url(
        &self,
        request: &AuthorizationRequest<'_>,
    ) -> Result<Url, IdpError> {
        let provider = self.provider().await?;
        let mut url = provider.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("redirect_uri", self.settings.redirect_uri.as_str())
                .append_pair("scope", &request.scopes.join(" "))
                .append_pair("state", request.state)
                .append_pair("nonce", request.nonce)
                .append_pair("code_challenge", &request.code_challenge)
                // Sent explicitly: some providers default to `plain`.
                .append_pair("code_challenge_method", "S256");
            for (k, v) in request.extra {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// RP-initiated logout URL, when the provider has an end-session endpoint.
    pub async fn end_session_url(
        &self,
        id_token_hint: Option<&Secret>,
        post_logout: &Url,
    ) -> Result<Option<Url>, IdpError> {
        let provider = self.provider().await?;
        Ok(provider.end_session_endpoint.clone().map(|mut url| {
            {
                let mut q = url.query_pairs_mut();
                if let Some(hint) = id_token_hint {
                    q.append_pair("id_token_hint", hint.expose());
                }
                q.append_pair("post_logout_redirect_uri", post_logout.as_str())
                    .append_pair("client_id", &self.settings.client_id);
            }
            url
        }))
    }

    /// Current time-independent metadata, for the RFC 9207 check.
    pub async fn expects_iss_parameter(&self) -> Result<bool, IdpError> {
        Ok(self.provider().await?.iss_parameter_supported)
    }

    pub(crate) fn http(&self) -> &http::HttpClient {
        &self.http
    }
}

/// Parameters of one authorization request.
#[derive(Debug)]
pub struct AuthorizationRequest<'a> {
    /// Scopes.
    pub scopes: &'a [String],
    /// `state`.
    pub state: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// base64url(SHA-256(verifier)).
    pub code_challenge: String,
    /// Allowed pass-through parameters.
    pub extra: &'a [(&'static str, String)],
}

/// PKCE S256 challenge for a verifier (RFC 7636 4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    crate::session::hash_key(verifier)
}

fn invalid(e: IdTokenError) -> IdpError {
    match e {
        IdTokenError::NoMatchingKey => IdpError::InvalidAnswer("no_matching_key"),
        IdTokenError::Invalid(reason) => IdpError::InvalidAnswer(reason),
    }
}

fn discovery_error<E: std::error::Error>(e: openidconnect::DiscoveryError<E>) -> IdpError {
    use openidconnect::DiscoveryError as D;
    match e {
        D::Request(inner) => IdpError::Unavailable(inner.to_string()),
        D::Response(status, _, _) => IdpError::Unavailable(format!("HTTP {status}")),
        D::Parse(_) => IdpError::Unavailable("unparseable metadata or JWKS".into()),
        D::Validation(_) => IdpError::Metadata("issuer mismatch"),
        D::UrlParse(_) => IdpError::Metadata("bad URL"),
        _ => IdpError::Unavailable("discovery failed".into()),
    }
}

/// Seconds from now until `expires_in` elapses, with a floor.
pub(crate) fn expiry(now: UnixTime, expires_in: Option<u64>) -> UnixTime {
    now + expires_in.unwrap_or(300).min(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Authentik's layout: per-application issuer, JWKS and end-session
    /// under `/application/o/SLUG/`, shared authorize/token/revoke endpoints.
    const AUTHENTIK: &str = include_str!("testdata/authentik-discovery.json");

    #[test]
    fn authentik_discovery_document_is_usable_as_it_is() {
        let meta: Metadata = serde_json::from_str(AUTHENTIK).unwrap();
        assert_eq!(
            meta.issuer().as_str(),
            "https://authentik.example.com/application/o/static-site/"
        );
        let p = Provider::from_metadata(&meta).unwrap();
        assert_eq!(
            p.authorization_endpoint.as_str(),
            "https://authentik.example.com/application/o/authorize/"
        );
        assert_eq!(
            p.token_endpoint.as_str(),
            "https://authentik.example.com/application/o/token/"
        );
        assert_eq!(
            p.revocation_endpoint.unwrap().as_str(),
            "https://authentik.example.com/application/o/revoke/"
        );
        assert_eq!(
            p.end_session_endpoint.unwrap().as_str(),
            "https://authentik.example.com/application/o/static-site/end-session/"
        );
        assert_eq!(
            p.signing_algorithms,
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
        );
        assert!(!p.iss_parameter_supported);
    }

    #[test]
    fn metadata_without_s256_is_refused() {
        for methods in [r#"["plain"]"#, "[]"] {
            let doc = AUTHENTIK.replace(r#"["plain", "S256"]"#, methods);
            let meta: Metadata = serde_json::from_str(&doc).unwrap();
            assert!(matches!(
                Provider::from_metadata(&meta),
                Err(IdpError::Metadata(_))
            ));
        }
        let mut doc: serde_json::Value = serde_json::from_str(AUTHENTIK).unwrap();
        doc.as_object_mut()
            .unwrap()
            .remove("code_challenge_methods_supported");
        let meta: Metadata = serde_json::from_value(doc).unwrap();
        assert!(Provider::from_metadata(&meta).is_err());
    }
}
