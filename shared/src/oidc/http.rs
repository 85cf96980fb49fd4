//! The one HTTP client that talks to the provider: no redirects (a provider
//! redirecting us elsewhere is SSRF), explicit connect and total timeouts well
//! under API Gateway's 30 s, and a cap on response size.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Largest provider response read (discovery, JWKS, token responses).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A transport failure; never carries a request or response body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connect, TLS, timeout or protocol failure.
    #[error("request failed: {0}")]
    Transport(String),
    /// The body exceeded [`MAX_RESPONSE_BYTES`].
    #[error("response too large")]
    TooLarge,
}

/// reqwest with the limits above.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    /// Builds the client; `timeout` bounds each whole request.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, HttpError> {
        // The same TLS stack as the AWS SDK (rustls on aws-lc-rs), so the
        // binary carries one crypto library, not two.
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Transport(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let inner = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("static-login/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Transport(e.without_url().to_string()))?;
        Ok(Self { inner })
    }

    /// Sends a request and reads at most [`MAX_RESPONSE_BYTES`].
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| HttpError::Transport(e.without_url().to_string()))?;
        let mut response = self
            .inner
            .execute(request)
            .await
            .map_err(|e| HttpError::Transport(e.without_url().to_string()))?;
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError::Transport(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| HttpError::Transport(e.to_string()))
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
