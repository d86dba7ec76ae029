//! The smallest Lambda Runtime API that a function binary runs against: it hands out
//! the events it is given, one per `next`, and reports each posted response with the
//! instant it arrived. HTTP/1.1 with keep-alive, on 127.0.0.1 only.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// What the function posted for one invocation.
#[derive(Debug)]
pub struct Posted {
    pub body: Vec<u8>,
    pub at: Instant,
    pub error: bool,
}

pub struct RuntimeApi {
    pub address: String,
    events: mpsc::Sender<Vec<u8>>,
    posted: mpsc::Receiver<Posted>,
}

struct Shared {
    events: Mutex<mpsc::Receiver<Vec<u8>>>,
    posted: mpsc::Sender<Posted>,
    next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (event_tx, event_rx) = mpsc::channel(1);
        let (posted_tx, posted_rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            events: Mutex::new(event_rx),
            posted: posted_tx,
            next_id: 0.into(),
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, shared).await;
                });
            }
        });
        Ok(Self {
            address,
            events: event_tx,
            posted: posted_rx,
        })
    }

    /// Queues one event for the next `next` call.
    pub async fn send(&self, event: Vec<u8>) {
        let _ = self.events.send(event).await;
    }

    /// Waits for the next response (or error) the function posts.
    pub async fn posted(&mut self) -> Option<Posted> {
        self.posted.recv().await
    }

    /// One invocation: queue the event and wait for its answer.
    pub async fn invoke(&mut self, event: Vec<u8>) -> Option<Posted> {
        self.send(event).await;
        self.posted().await
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    // Small writes must not wait for delayed ACKs.
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let body = if chunked {
            read_chunked(&mut reader).await?
        } else {
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).await?;
            body
        };
        let at = Instant::now();
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("");
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let event = shared.events.lock().await.recv().await;
            let Some(event) = event else {
                return Ok(());
            };
            // A UUID, as Lambda's request ids are, so log lines measured here weigh what
            // they weigh on AWS.
            let id = shared
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let deadline_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 900_000)
                .unwrap_or(0);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: {id:08x}-0000-4000-8000-000000000000\r\n\
                 lambda-runtime-deadline-ms: {deadline_ms}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:session\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                event.len()
            );
            let mut message = head.into_bytes();
            message.extend_from_slice(&event);
            write.write_all(&message).await?;
        } else {
            let error = path.ends_with("/error");
            let _ = shared.posted.send(Posted { body, at, error }).await;
            write
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .await?;
        }
        write.flush().await?;
    }
}

async fn read_chunked<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).await?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .unwrap_or(0);
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).await?;
    }
}
