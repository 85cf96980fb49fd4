//! `GET /auth/callback`; logic in `static_login::handlers::callback`.

use lambda_http::{service_fn, Error, Request};
use static_login::state::Function;
use static_login::{handlers::callback, telemetry, AppState};

// One invocation at a time per sandbox: a single-threaded runtime saves the
// thread hand-offs a multi-threaded one pays on every request (measured in
// docs/performance.md); `tokio::join!` still overlaps the I/O.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    // Once per cold start: config (fails naming the variable), SDK and HTTP clients, keys.
    let state = AppState::from_env(Function::Callback).await?;
    // Metadata and JWKS into the cache; if the provider is down, the first
    // request retries.
    state.oidc.prefetch().await;
    let state = &state;
    lambda_http::run(service_fn(move |req: Request| callback::handle(state, req))).await
}
