//! moto's server for SSM, the one service Dynoxide does not serve: the Django key
//! parameter's tests read a SecureString from it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use crate::{Error, workspace_root};

/// The SSM endpoint for the tests of the Django key parameter: moto's server, which
/// serves SSM (Dynoxide serves DynamoDB only), started once for this process on a free
/// loopback port; the kernel stops it when the process exits.
pub fn ssm_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| start_moto().unwrap_or_else(|e| panic!("cannot start moto's server: {e}")))
}

fn start_moto() -> Result<String, Error> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let program = workspace_root().join(".venv/bin/moto_server");
    let (tx, rx) = mpsc::channel();
    // The server's parent-death signal fires when the spawning thread ends, so spawn
    // from a thread that lives as long as the process.
    std::thread::spawn(move || {
        let mut command = Command::new(&program);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let spawned = command
            .spawn()
            .map_err(|e| format!("{}: {e} (run `make venv` first)", program.display()));
        let started = spawned.is_ok();
        let _ = tx.send(spawned.map(|_| ()));
        if started {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv()??;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("moto's server did not listen on {addr} within 60 s").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("http://{addr}"))
}
