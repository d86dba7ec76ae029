//! Logging set-up shared by every function: one JSON object per line, which CloudWatch
//! Logs Insights can query field by field.

use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, fmt};

/// The variables the log set-up reads.
pub const VARIABLES: &[&str] = &["RUST_LOG"];

/// Crates that log whole events, requests or signing material below INFO: the runtime
/// logs each raw event at TRACE, and the SDK logs requests (data, `Authorization`,
/// `x-amz-security-token`) and errors that carry old items at DEBUG and TRACE. They are
/// capped at INFO whatever `RUST_LOG` asks for; target names match by prefix.
pub const CAPPED_AT_INFO: &[&str] = &[
    "lambda_runtime",
    "lambda_http",
    "aws_smithy",
    "aws_sigv4",
    "aws_sdk",
    "aws_runtime",
    "aws_config",
    "hyper",
    "h2",
    "rustls",
    "tower",
];

/// JSON lines on stdout, filtered by `RUST_LOG` (default `info`). Call once, in `main`.
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// The subscriber `init` installs, writing to `writer`, so tests can capture the output.
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    subscriber_with(&directives, writer)
}

/// As [`subscriber`], with `directives` in place of `RUST_LOG`.
pub fn subscriber_with<W>(
    directives: &str,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + use<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let asked = EnvFilter::try_new(directives)
        .ok()
        .filter(|_| !directives.trim().is_empty())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let cap = CAPPED_AT_INFO
        .iter()
        .fold(Targets::new().with_default(LevelFilter::TRACE), |t, c| {
            t.with_target(*c, LevelFilter::INFO)
        });
    let lines = fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .with_filter(asked.and(cap));
    tracing_subscriber::registry().with(lines)
}
