//! Dev-only local gateway: serves the five handlers at their API Gateway
//! paths, turning each HTTP request into the same API Gateway HTTP API
//! (payload v2) event that AWS would send, and serves a static folder for the
//! demo site. The binary reads the same environment variables as the
//! functions; tests embed [`serve`] with a configuration of their own.
//!
//! Never deploy this: it is a development and test harness.

mod event;
mod files;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use static_login::store::{DynamoStore, Store};
use static_login::{handlers, AppState};
use tokio::net::TcpListener;

/// Request bodies above this are refused before they reach a handler.
const MAX_BODY: usize = 64 * 1024;

/// What the gateway serves.
pub struct Gateway<S: Store = DynamoStore> {
    /// The functions' state.
    pub state: AppState<S>,
    /// The demo site's folder, if any.
    pub static_dir: Option<PathBuf>,
}

/// Accepts connections until the task is dropped.
pub async fn serve<S: Store + 'static>(
    listener: TcpListener,
    gateway: impl Into<Arc<Gateway<S>>>,
) -> std::io::Result<()> {
    let gateway: Arc<Gateway<S>> = gateway.into();
    loop {
        let (stream, peer) = listener.accept().await?;
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(answer(&gateway, req, peer).await) }
            });
            if let Err(e) = http1::Builder::new()
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

async fn answer<S: Store>(
    gateway: &Gateway<S>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(413, "request body too large"),
    };
    let path = parts.uri.path();
    if path == "/auth" || path.starts_with("/auth/") {
        let event = event::api_gateway_v2(&parts, &body, peer);
        let request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(_) => return plain(400, "request could not be translated"),
        };
        let Ok(response) = handlers::route(&gateway.state, request).await;
        return event::into_hyper(response);
    }
    let Some(dir) = &gateway.static_dir else {
        return plain(404, "not found");
    };
    if let Some(signer) = &gateway.state.config.cloudfront {
        if signer.protects(parts.uri.path()) && !cloudfront_admits(signer, &parts) {
            // What CloudFront does for a trusted-key-group behaviour without
            // valid cookies: 403, here with the site's own error page (the
            // deployed distribution maps 403 to the same page).
            return files::serve_status(dir, "login-required.html", 403).await;
        }
    }
    files::serve(dir, &parts).await
}

fn plain(status: u16, text: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
}

/// Verifies CloudFront signed cookies exactly as CloudFront would.
fn cloudfront_admits(
    signer: &static_login::cloudfront::CookieSigner,
    parts: &http::request::Parts,
) -> bool {
    use static_login::cloudfront::{self, KEY_PAIR_ID, POLICY, SIGNATURE};
    let mut found: [Option<String>; 3] = [None, None, None];
    for header in parts.headers.get_all(http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for cookie in cookie::Cookie::split_parse(text).flatten() {
            let slot = match cookie.name() {
                POLICY => 0,
                SIGNATURE => 1,
                KEY_PAIR_ID => 2,
                _ => continue,
            };
            if found[slot].is_none() {
                found[slot] = Some(cookie.value().to_owned());
            }
        }
    }
    let [Some(policy), Some(signature), Some(key_pair_id)] = found else {
        return false;
    };
    let url = format!(
        "{}{}",
        signer.site_origin(),
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    cloudfront::verify(
        &signer.public_key(),
        signer.key_pair_id(),
        (&policy, &signature, &key_pair_id),
        &url,
        static_login::session::now(),
    )
    .is_ok()
}
