//! `make dev`'s DynamoDB: Dynoxide served on a loopback port, with its TTL sweep run
//! every few seconds, so that expired items are deleted as DynamoDB's TTL deletes them
//! (stream records carrying the service's `userIdentity`) and reach the stream runner.
//! The stock `dynoxide serve` never sweeps by itself.
//!
//! Usage: local-dynamodb [--port PORT] [--sweep-seconds N]
//! (defaults: $DYNAMODB_PORT or 8000, and 2 s). Stops on SIGTERM or Ctrl-C.

use std::time::Duration;

use testkit::emulator::Database;

struct Args {
    port: u16,
    sweep: Duration,
}

fn args() -> Result<Args, String> {
    let mut port = std::env::var("DYNAMODB_PORT")
        .ok()
        .map_or(Ok(8000), |p| p.parse::<u16>())
        .map_err(|e| format!("DYNAMODB_PORT: {e}"))?;
    let mut sweep = Duration::from_secs(2);
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value.parse().map_err(|e| format!("--port: {e}"))?,
            "--sweep-seconds" => {
                let secs: u64 = value.parse().map_err(|e| format!("--sweep-seconds: {e}"))?;
                sweep = Duration::from_secs(secs.max(1));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args { port, sweep })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let args = args()?;
    let db = Database::memory().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("127.0.0.1:{}: {e}", args.port))?;
    let sweeper = db.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(args.sweep);
        loop {
            every.tick().await;
            let db = sweeper.clone();
            match tokio::task::spawn_blocking(move || db.sweep_ttl()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => eprintln!("local-dynamodb: TTL deleted {n} expired item(s)"),
                Ok(Err(e)) => eprintln!("local-dynamodb: TTL sweep failed: {e}"),
                Err(e) => eprintln!("local-dynamodb: TTL sweep failed: {e}"),
            }
        }
    });
    eprintln!(
        "local-dynamodb: Dynoxide on http://127.0.0.1:{}, TTL swept every {} s",
        args.port,
        args.sweep.as_secs()
    );
    dynoxide::server::serve_with_shutdown(listener, db, stopped()).await
}

/// SIGTERM or Ctrl-C.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
