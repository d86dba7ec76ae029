//! Logging set-up shared by every function: one JSON object per line, which CloudWatch
//! Logs Insights can query field by field.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The variables the log set-up reads.
pub const VARIABLES: &[&str] = &["RUST_LOG"];

/// JSON lines on stdout, filtered by `RUST_LOG` (default `info`). Call once, in `main`.
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// The subscriber `init` installs, writing to `writer`, so tests can capture the output.
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(writer)
        .finish()
}
