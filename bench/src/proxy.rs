//! A keep-alive front for the emulator. moto's server closes the connection after every
//! response, which DynamoDB does not: without this front every request of the measured
//! process would pay for a new TCP connection. It also sums the time spent waiting for
//! the emulator, so that figures can be given with and without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub url: String,
    upstream_ns: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let upstream_ns = Arc::new(AtomicU64::new(0));
        let waited = upstream_ns.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, waited) = (upstream.clone(), waited.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &upstream, &waited).await;
                });
            }
        });
        Ok(Self { url, upstream_ns })
    }

    /// Nanoseconds spent waiting for the emulator so far, over all connections.
    pub fn upstream_ns(&self) -> u64 {
        self.upstream_ns.load(Ordering::Relaxed)
    }
}

/// Reads one HTTP/1.1 message head; `None` at a clean end of the stream.
async fn read_head<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<(Vec<String>, usize)>> {
    let mut lines = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            return Ok(Some((lines, length)));
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        lines.push(line);
    }
}

async fn serve(client: TcpStream, upstream: &str, waited: &AtomicU64) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let (read, mut write) = client.into_split();
    let mut reader = BufReader::new(read);
    while let Some((head, length)) = read_head(&mut reader).await? {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let mut request = Vec::with_capacity(length + 1024);
        for line in &head {
            if !line.to_ascii_lowercase().starts_with("connection:") {
                request.extend_from_slice(line.as_bytes());
                request.extend_from_slice(b"\r\n");
            }
        }
        request.extend_from_slice(b"connection: close\r\n\r\n");
        request.extend_from_slice(&body);

        let started = Instant::now();
        let mut up = TcpStream::connect(upstream).await?;
        up.set_nodelay(true)?;
        up.write_all(&request).await?;
        let mut up_reader = BufReader::new(up);
        let Some((head, length)) = read_head(&mut up_reader).await? else {
            return Ok(());
        };
        let mut body = vec![0; length];
        up_reader.read_exact(&mut body).await?;
        waited.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );

        let mut response = Vec::with_capacity(length + 1024);
        for line in &head {
            if !line.to_ascii_lowercase().starts_with("connection:") {
                response.extend_from_slice(line.as_bytes());
                response.extend_from_slice(b"\r\n");
            }
        }
        response.extend_from_slice(b"\r\n");
        response.extend_from_slice(&body);
        write.write_all(&response).await?;
    }
    Ok(())
}
