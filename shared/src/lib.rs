//! OpenID Connect login for static sites: the logic behind the five Lambda
//! functions (authorize, callback, session, refresh, logout).
//!
//! Dependencies point down: `handlers` use `edge` (the only place that sees
//! API Gateway types besides `handlers`), `oidc`, `store`, `cookies`,
//! `ratelimit`, `redirect` and `audit`; `config` is read once at cold start.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod audit;
pub mod cloudfront;
pub mod config;
pub mod cookies;
pub mod edge;
pub mod error;
pub mod handlers;
pub mod oidc;
pub mod ratelimit;
pub mod redirect;
pub mod secret;
pub mod session;
pub mod state;
pub mod store;
pub mod telemetry;

pub use state::AppState;
