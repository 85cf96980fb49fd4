//! Token endpoint calls (authorization code with PKCE, refresh) and RFC 7009
//! revocation, authenticated with `client_secret_basic`.

use base64::Engine;
use serde::Deserialize;

use super::{expiry, Expected, IdClaims, IdpError, Oidc};
use crate::secret::Secret;
use crate::session::UnixTime;

/// Tokens from one successful grant, with the validated ID token claims.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// Access token.
    pub access_token: Secret,
    /// When it expires.
    pub access_expires_at: UnixTime,
    /// A new refresh token, if the provider rotated or issued one.
    pub refresh_token: Option<Secret>,
    /// The raw ID token (kept for `id_token_hint`).
    pub id_token: Secret,
    /// Its validated claims.
    pub claims: IdClaims,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// A refresh grant's outcome before ID token checks against the session.
#[derive(Debug)]
pub struct Refreshed {
    /// Access token.
    pub access_token: Secret,
    /// When it expires.
    pub access_expires_at: UnixTime,
    /// New refresh token; `None` keeps the old one (Authentik below its
    /// rotation threshold answers without one).
    pub refresh_token: Option<Secret>,
    /// New ID token and claims, when the provider sent one.
    pub id_token: Option<(Secret, IdClaims)>,
}

impl Oidc {
    /// Exchanges an authorization code (with its PKCE verifier) and validates
    /// the ID token against the login's nonce.
    pub async fn exchange_code(
        &self,
        code: &Secret,
        verifier: &Secret,
        expected: Expected<'_>,
    ) -> Result<TokenSet, IdpError> {
        let redirect_uri = self.settings.redirect_uri.to_string();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.expose()),
        ];
        let response = self.token_request(&form).await?;
        let raw_id = response
            .id_token
            .ok_or(IdpError::InvalidAnswer("no_id_token"))?;
        let claims = self.validate_id_token(&raw_id, expected).await?;
        Ok(TokenSet {
            access_token: Secret::new(response.access_token),
            access_expires_at: expiry(expected.now, response.expires_in),
            refresh_token: response.refresh_token.map(Secret::new),
            id_token: Secret::new(raw_id),
            claims,
        })
    }

    /// Uses a refresh token. The ID token, when present, is validated here;
    /// the caller checks it belongs to the same user.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<Refreshed, IdpError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        let response = self.token_request(&form).await?;
        let id_token = match response.id_token {
            Some(raw) => {
                let expected = Expected {
                    issuer: &self.settings.issuer,
                    client_id: &self.settings.client_id,
                    nonce: None,
                    max_age: None,
                    now,
                };
                let claims = self.validate_id_token(&raw, expected).await?;
                Some((Secret::new(raw), claims))
            }
            None => None,
        };
        Ok(Refreshed {
            access_token: Secret::new(response.access_token),
            access_expires_at: expiry(now, response.expires_in),
            refresh_token: response.refresh_token.map(Secret::new),
            id_token,
        })
    }

    /// Revokes a refresh token (RFC 7009). `Ok(false)` when the provider has
    /// no revocation endpoint.
    pub async fn revoke(&self, refresh_token: &Secret) -> Result<bool, IdpError> {
        let provider = self.provider().await?;
        let Some(endpoint) = provider.revocation_endpoint.clone() else {
            return Ok(false);
        };
        let form = [
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
        ];
        let response = self.post_form(endpoint, &form).await?;
        match response.status().as_u16() {
            // RFC 7009 2.2: 200 also for tokens that were already invalid.
            200 => Ok(true),
            s if s >= 500 => Err(IdpError::Unavailable(format!("revocation HTTP {s}"))),
            _ => Err(IdpError::Rejected("revocation_refused")),
        }
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, IdpError> {
        let endpoint = self.provider().await?.token_endpoint.clone();
        let response = self.post_form(endpoint, form).await?;
        let status = response.status();
        if status.is_success() {
            let body: TokenResponse = serde_json::from_slice(response.body())
                .map_err(|_| IdpError::Unavailable("unparseable token response".into()))?;
            // RFC 6749 5.1 / OIDC Core 3.1.3.3: we only know Bearer tokens.
            if !body.token_type.eq_ignore_ascii_case("bearer") {
                return Err(IdpError::InvalidAnswer("token_type"));
            }
            return Ok(body);
        }
        if status.is_server_error() {
            return Err(IdpError::Unavailable(format!(
                "token endpoint HTTP {status}"
            )));
        }
        // 4xx: an OAuth error. Only well-known codes are kept; the body is not.
        let code = serde_json::from_slice::<ErrorResponse>(response.body())
            .map(|e| e.error)
            .unwrap_or_default();
        Err(IdpError::Rejected(match code.as_str() {
            "invalid_grant" => "invalid_grant",
            "invalid_client" => "invalid_client",
            "unauthorized_client" => "unauthorized_client",
            "invalid_request" => "invalid_request",
            "invalid_scope" => "invalid_scope",
            _ => "token_request_refused",
        }))
    }

    async fn post_form(
        &self,
        endpoint: url::Url,
        form: &[(&str, &str)],
    ) -> Result<openidconnect::HttpResponse, IdpError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        // RFC 6749 2.3.1: id and secret are form-encoded before Basic encoding.
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let secret = self
            .settings
            .client_secret
            .as_ref()
            .ok_or(IdpError::Metadata("this function has no client secret"))?;
        let credentials = format!(
            "{}:{}",
            encode(&self.settings.client_id),
            encode(secret.expose())
        );
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(endpoint.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::AUTHORIZATION, authorization)
            .body(body.into_bytes())
            .map_err(|_| IdpError::Unavailable("could not build request".into()))?;
        self.http()
            .send(request)
            .await
            .map_err(|e| IdpError::Unavailable(e.to_string()))
    }
}
