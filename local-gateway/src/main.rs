//! Dev-only local gateway: serves the five handlers at their API Gateway
//! paths on `PORT` (default 9000), turning each HTTP request into the same
//! API Gateway HTTP API (payload v2) event that AWS would send, and serves a
//! static folder (`STATIC_DIR`) for the demo site. Configuration comes from
//! the same environment variables as the functions.
//!
//! Never deploy this: it is a development and test harness.

mod event;
mod files;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use static_login::{handlers, telemetry, AppState};
use tokio::net::TcpListener;

/// Request bodies above this are refused before they reach a handler.
const MAX_BODY: usize = 64 * 1024;

struct Gateway {
    state: AppState,
    static_dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let port: u16 = std::env::var("PORT")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| p.parse())
        .transpose()
        .context("PORT must be a port number")?
        .unwrap_or(9000);
    let bind: std::net::IpAddr = std::env::var("BIND_ADDR")
        .ok()
        .filter(|b| !b.is_empty())
        .map(|b| b.parse())
        .transpose()
        .context("BIND_ADDR must be an IP address")?
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let state = AppState::from_env().await?;
    state.oidc.prefetch().await;
    let static_dir = std::env::var_os("STATIC_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from);
    let gateway = Arc::new(Gateway { state, static_dir });

    let listener = TcpListener::bind(SocketAddr::new(bind, port))
        .await
        .with_context(|| format!("cannot listen on {bind}:{port}"))?;
    println!(
        "local-gateway listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (stream, peer) = listener.accept().await?;
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(serve(&gateway, req, peer).await) }
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

async fn serve(
    gateway: &Gateway,
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
    match &gateway.static_dir {
        Some(dir) => files::serve(dir, &parts).await,
        None => plain(404, "not found"),
    }
}

fn plain(status: u16, text: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
}
