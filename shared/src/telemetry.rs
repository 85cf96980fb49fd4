//! Logging setup: JSON lines to stdout (CloudWatch), `RUST_LOG` filter.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Installs the JSON subscriber once; later calls are ignored.
pub fn init() {
    // The runtime logs raw events at TRACE, and raw events carry cookies.
    let cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("lambda_runtime", LevelFilter::DEBUG)
        .with_target("lambda_http", LevelFilter::DEBUG)
        .with_target("aws_smithy_runtime", LevelFilter::INFO)
        .with_target("hyper", LevelFilter::INFO)
        .with_target("reqwest", LevelFilter::INFO);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_filter(cap),
        )
        .try_init();
}
