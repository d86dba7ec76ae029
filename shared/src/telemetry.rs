//! Logging set-up shared by every function: one JSON object per line, which CloudWatch
//! Logs Insights can query field by field. Lambda's logging controls decide the level and
//! the format in AWS (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT`, which Lambda sets
//! from the function's `LoggingConfig`); `RUST_LOG`, when set, decides the level locally.

use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, fmt};

/// The variables the log set-up reads: Lambda sets the first two itself, and `RUST_LOG`
/// is for local runs, so the template sets none of them.
pub const VARIABLES: &[&str] = &["AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_FORMAT", "RUST_LOG"];

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

/// Lines on stdout at the level the environment asks for (default `info`). Call once,
/// in `main`.
pub fn init() {
    let var = |name| std::env::var(name).ok();
    let directives = directives(var("RUST_LOG"), var("AWS_LAMBDA_LOG_LEVEL"));
    let text = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
    let _ = tracing::subscriber::set_global_default(lines(&directives, std::io::stdout, text));
}

/// The level directives: `RUST_LOG` when set (local runs), else Lambda's application log
/// level (`TRACE` to `FATAL`; tracing has no `FATAL`, so that is `error`), else `info`.
pub fn directives(rust_log: Option<String>, lambda_level: Option<String>) -> String {
    let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    set(rust_log)
        .or_else(|| {
            set(lambda_level).map(|level| match level.trim().to_ascii_lowercase().as_str() {
                "fatal" => "error".to_owned(),
                other => other.to_owned(),
            })
        })
        .unwrap_or_else(|| "info".to_owned())
}

/// The subscriber `init` installs for JSON, writing to `writer`, so tests can capture it.
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    subscriber_with(&directives, writer)
}

/// The asked level, with the crates that log payloads or credentials capped.
fn filter<S>(directives: &str) -> impl tracing_subscriber::layer::Filter<S> + use<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
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
    asked.and(cap)
}

/// As [`subscriber`], with `directives` in place of `RUST_LOG`.
pub fn subscriber_with<W>(
    directives: &str,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + use<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    lines(directives, writer, false)
}

/// JSON lines, or plain text lines for functions whose log format is `Text`.
fn lines<W>(
    directives: &str,
    writer: W,
    text: bool,
) -> impl tracing::Subscriber + Send + Sync + use<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (json, plain) = if text {
        let plain = fmt::layer()
            .with_target(false)
            .with_ansi(false)
            .with_writer(writer)
            .with_filter(filter(directives));
        (None, Some(plain))
    } else {
        let json = fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .with_ansi(false)
            .with_writer(writer)
            .with_filter(filter(directives));
        (Some(json), None)
    };
    tracing_subscriber::registry().with(json).with(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn the_text_format_writes_plain_lines_and_the_json_format_objects() {
        for text in [true, false] {
            let logs = testkit::CapturedLogs::default();
            tracing::subscriber::with_default(lines("info", logs.writer(), text), || {
                tracing::info!(answer = 42, "hello");
            });
            let out = logs.text();
            assert!(out.contains("hello") && out.contains("42"), "{out}");
            let parsed = serde_json::from_str::<serde_json::Value>(out.trim());
            assert_eq!(parsed.is_ok(), !text, "{out}");
        }
    }

    #[test]
    fn rust_log_then_lambdas_level_then_info_decide_the_level() {
        assert_eq!(
            directives(some("debug,hyper=info"), some("WARN")),
            "debug,hyper=info"
        );
        assert_eq!(directives(None, some("WARN")), "warn");
        assert_eq!(directives(some(" "), some("TRACE")), "trace");
        assert_eq!(directives(None, some("FATAL")), "error");
        assert_eq!(directives(None, None), "info");
    }
}
