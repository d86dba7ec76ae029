//! A proxy on 127.0.0.1 in front of the emulator, for two uses:
//! - keep-alive and timing: it keeps each client connection open whatever the emulator
//!   does with its own, as DynamoDB keeps them, and sums the time spent waiting for the
//!   emulator (the bench);
//! - faults: it answers chosen requests itself with DynamoDB's throttling errors or a
//!   500, holds them unanswered, or drops the connection, and counts what it injected
//!   (the fault-injection tests).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to a request instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 400 `ProvisionedThroughputExceededException`.
    ProvisionedThroughputExceeded,
    /// 400 `ThrottlingException`.
    Throttling,
    /// 500 `InternalServerError`.
    InternalServerError,
    /// No answer for a minute: only the client's timeout ends the wait.
    Timeout,
    /// The connection closes with the request read and no answer written.
    DropConnection,
    /// The request reaches DynamoDB and is carried out, then the connection closes
    /// before its answer is written: the caller cannot tell it from a lost request.
    LoseResponse,
    /// 400 `AccessDeniedException`: the role may not do this, however often it tries.
    AccessDenied,
    /// 400 `ValidationException`: DynamoDB refuses the request as written.
    Validation,
    /// 400 `TransactionCanceledException` whose reasons say the write was throttled.
    TransactionThrottled,
    /// 400 `TransactionCanceledException` whose reasons say a write was invalid.
    TransactionInvalid,
    /// The request is carried out and answered after [`SLOW`]: a slow DynamoDB, which
    /// spends an invocation's time without failing anything.
    Slow,
}

/// How long a [`Fault::Slow`] request waits before it is forwarded.
pub const SLOW: Duration = Duration::from_millis(150);

impl Fault {
    fn error_response(self) -> Option<Vec<u8>> {
        let bad = "400 Bad Request";
        let cancelled = "TransactionCanceledException";
        let (status, code, reasons) = match self {
            Self::ProvisionedThroughputExceeded => {
                (bad, "ProvisionedThroughputExceededException", None)
            }
            Self::Throttling => (bad, "ThrottlingException", None),
            Self::InternalServerError => ("500 Internal Server Error", "InternalServerError", None),
            Self::AccessDenied => (bad, "AccessDeniedException", None),
            Self::Validation => (bad, "ValidationException", None),
            Self::TransactionThrottled => (bad, cancelled, Some(["ThrottlingError", "None"])),
            Self::TransactionInvalid => (bad, cancelled, Some(["ValidationError", "None"])),
            Self::Timeout | Self::DropConnection | Self::LoseResponse | Self::Slow => return None,
        };
        let reasons = reasons.map_or(String::new(), |codes| {
            let listed: Vec<String> = codes
                .iter()
                .map(|c| format!("{{\"Code\":\"{c}\"}}"))
                .collect();
            format!(",\"CancellationReasons\":[{}]", listed.join(","))
        });
        let body = format!(
            "{{\"__type\":\"com.amazonaws.dynamodb.v20120810#{code}\",\"message\":\"injected by the test proxy\"{reasons}}}"
        );
        Some(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\n\
                 x-amzn-errortype: {code}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

/// One rule: requests whose `X-Amz-Target` ends with `operation` (every request when
/// empty) get `fault`, for the next `times` of them or, with `None`, until cleared.
#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    /// Matching requests that still pass before the fault starts.
    skip: u32,
    fault: Fault,
    times: Option<u32>,
}

#[derive(Default)]
struct Faults {
    rules: Mutex<Vec<Rule>>,
    injected: Mutex<BTreeMap<Fault, u64>>,
}

impl Faults {
    fn take(&self, target: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().ok()?;
        let at = rules.iter().position(|r| {
            r.operation.is_empty() || target.ends_with(&format!(".{}", r.operation))
        })?;
        let rule = &mut rules[at];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        if let Some(times) = rule.times.as_mut() {
            *times -= 1;
        }
        let fault = rule.fault;
        if rule.times == Some(0) {
            rules.remove(at);
        }
        if let Ok(mut injected) = self.injected.lock() {
            *injected.entry(fault).or_default() += 1;
        }
        Some(fault)
    }
}

pub struct Proxy {
    pub url: String,
    upstream_ns: Arc<AtomicU64>,
    faults: Arc<Faults>,
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
        let faults = Arc::new(Faults::default());
        let (waited, plan) = (upstream_ns.clone(), faults.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, waited, plan) = (upstream.clone(), waited.clone(), plan.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &upstream, &waited, &plan).await;
                });
            }
        });
        Ok(Self {
            url,
            upstream_ns,
            faults,
        })
    }

    /// Nanoseconds spent waiting for the emulator so far, over all connections.
    pub fn upstream_ns(&self) -> u64 {
        self.upstream_ns.load(Ordering::Relaxed)
    }

    /// Injects `fault` into the next `times` requests for `operation` (such as
    /// `PutItem`; "" for any), or into all of them with `None`. Rules apply in the
    /// order they were added.
    pub fn inject(&self, operation: &str, fault: Fault, times: Option<u32>) {
        self.inject_after(operation, 0, fault, times);
    }

    /// As `inject`, once `skip` matching requests have passed.
    pub fn inject_after(&self, operation: &str, skip: u32, fault: Fault, times: Option<u32>) {
        if let Ok(mut rules) = self.faults.rules.lock() {
            rules.push(Rule {
                operation: operation.to_owned(),
                skip,
                fault,
                times,
            });
        }
    }

    /// Removes every rule: from now on, requests pass.
    pub fn heal(&self) {
        if let Ok(mut rules) = self.faults.rules.lock() {
            rules.clear();
        }
    }

    /// How many requests got each fault so far.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.faults
            .injected
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub fn injected_total(&self) -> u64 {
        self.injected().values().sum()
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

/// The message with its `Connection` header replaced by `connection`, if any.
fn message(head: &[String], connection: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1024);
    for line in head {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some(value) = connection {
        out.extend_from_slice(format!("connection: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

async fn serve(
    client: TcpStream,
    upstream: &str,
    waited: &AtomicU64,
    faults: &Faults,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let (read, mut write) = client.into_split();
    let mut reader = BufReader::new(read);
    while let Some((head, length)) = read_head(&mut reader).await? {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let target = head
            .iter()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default();
        let fault = faults.take(&target);
        match fault {
            None | Some(Fault::LoseResponse) => {}
            Some(Fault::Slow) => tokio::time::sleep(SLOW).await,
            Some(Fault::DropConnection) => return Ok(()),
            Some(Fault::Timeout) => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                return Ok(());
            }
            Some(fault) => {
                if let Some(answer) = fault.error_response() {
                    write.write_all(&answer).await?;
                }
                continue;
            }
        }

        let started = Instant::now();
        let mut up = TcpStream::connect(upstream).await?;
        up.set_nodelay(true)?;
        up.write_all(&message(&head, Some("close"), &body)).await?;
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
        if fault == Some(Fault::LoseResponse) {
            return Ok(());
        }
        write.write_all(&message(&head, None, &body)).await?;
    }
    Ok(())
}
