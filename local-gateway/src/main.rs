//! `local-gateway`: the five handlers on `PORT` (default 9000) plus
//! `STATIC_DIR`, configured by the functions' environment variables.

use std::sync::Arc;

use anyhow::Context as _;
use local_gateway::{serve, Gateway};
use static_login::state::Function;
use static_login::{telemetry, AppState};
use tokio::net::TcpListener;

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
    let state = AppState::from_env(Function::LocalGateway).await?;
    state.oidc.prefetch().await;
    let static_dir = std::env::var_os("STATIC_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from);
    let listener = TcpListener::bind((bind, port))
        .await
        .with_context(|| format!("cannot listen on {bind}:{port}"))?;
    let gateway = Arc::new(Gateway { state, static_dir });
    // `localhost` may resolve to ::1 first: by default serve IPv6 loopback
    // too, when the machine has it.
    if std::env::var_os("BIND_ADDR").is_none() {
        if let Ok(v6) = TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, port)).await {
            tokio::spawn(serve(v6, gateway.clone()));
        }
    }
    println!(
        "local-gateway listening on http://{}",
        listener.local_addr()?
    );
    serve(listener, gateway).await?;
    Ok(())
}
