//! Dynoxide, the project's DynamoDB for tests and `make dev`: an emulator on SQLite that
//! validates requests as DynamoDB does, served over DynamoDB's HTTP API from this
//! process, so that every test talks to it through the SDK exactly as the functions
//! talk to DynamoDB.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

pub use dynoxide::Database;

use crate::Error;

/// A Dynoxide serving `db` on a loopback port.
#[derive(Clone)]
pub struct Server {
    pub url: String,
    /// The database behind the server, for what only its library does: writes below the
    /// API (the two-region simulation's replication) and the TTL sweep.
    pub db: Database,
}

/// Serves `db` on a free loopback port from a thread of its own (with its own runtime,
/// so it outlives every test's runtime) until the process ends.
pub fn serve_in_background(db: Database) -> Result<Server, Error> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let served = db.clone();
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("dynoxide".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(format!("no runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(format!("no listener: {e}")));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                let served =
                    dynoxide::server::serve_with_shutdown(listener, served, std::future::pending())
                        .await;
                if let Err(e) = served {
                    eprintln!("Dynoxide stopped: {e}");
                }
            });
        })?;
    rx.recv_timeout(Duration::from_secs(30))??;
    Ok(Server {
        url: format!("http://{addr}"),
        db,
    })
}

/// A Dynoxide on a new in-memory database, served as [`serve_in_background`] does.
pub fn serve_memory() -> Result<Server, Error> {
    serve_in_background(Database::memory()?)
}
