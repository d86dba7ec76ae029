//! HTTP in front of a function under the harness's Runtime API, as a function URL is in
//! AWS: each request becomes the committed sample event with its method, path, headers
//! and body, and the function's posted answer becomes the response. One invocation at
//! a time, as one Lambda instance serves them; HTTP/1.1 with keep-alive, 127.0.0.1 only.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use testkit::runtime_api::RuntimeApi;

use crate::event::api_event_text;
use crate::figures::Error;

pub struct HttpFront {
    pub url: String,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl HttpFront {
    pub async fn start(api: RuntimeApi, template: Value) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new((Mutex::new(api), template));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    // A failed connection is the client's retry to pay for: said, so
                    // that a figure it inflates is not taken for the service's.
                    if let Err(e) = serve(stream, &shared.0, &shared.1).await {
                        eprintln!("bench: the HTTP front dropped a connection: {e}");
                    }
                });
            }
        });
        Ok(Self { url })
    }
}

async fn serve(stream: TcpStream, api: &Mutex<RuntimeApi>, template: &Value) -> Result<(), Error> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(request) = read_request(&mut reader).await? {
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let event = api_event_text(
            template,
            &request.method,
            &request.path,
            request.body.as_deref(),
            &headers,
        );
        let posted = api
            .lock()
            .await
            .invoke(event)
            .await
            .ok_or("the function stopped")?;
        let answer: Value = serde_json::from_slice(&posted.body)?;
        let status = answer["statusCode"].as_u64().unwrap_or(502);
        let body = match request.method.as_str() {
            "HEAD" => "",
            _ => answer["body"].as_str().unwrap_or(""),
        };
        let mut head = format!("HTTP/1.1 {status} -\r\n");
        for (name, value) in answer["headers"].as_object().into_iter().flatten() {
            if !name.eq_ignore_ascii_case("content-length") {
                head.push_str(&format!("{name}: {}\r\n", value.as_str().unwrap_or("")));
            }
        }
        let length = match request.method.as_str() {
            "HEAD" => 0,
            _ => body.len(),
        };
        head.push_str(&format!("content-length: {length}\r\n\r\n"));
        write.write_all(head.as_bytes()).await?;
        write.write_all(body.as_bytes()).await?;
    }
    Ok(())
}

async fn read_request<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
) -> Result<Option<Request>, Error> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or("no method")?.to_owned();
    let path = parts.next().ok_or("no path")?.to_owned();
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "content-length" {
                length = value.trim().parse()?;
            }
            headers.push((name, value.trim().to_owned()));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let body = (length > 0).then(|| String::from_utf8(body)).transpose()?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_read_one_after_another_from_a_kept_alive_connection() {
        let wire = b"PUT /sessions/k HTTP/1.1\r\nHost: x\r\nIf-Match: \"2\"\r\nContent-Length: 12\r\n\r\n{\"data\":{}}\nGET /sessions/k HTTP/1.1\r\n\r\n";
        let mut reader = BufReader::new(&wire[..]);
        let put = read_request(&mut reader).await.unwrap().unwrap();
        assert_eq!(
            (put.method.as_str(), put.path.as_str()),
            ("PUT", "/sessions/k")
        );
        assert!(put.headers.contains(&("if-match".into(), "\"2\"".into())));
        assert_eq!(put.body.as_deref(), Some("{\"data\":{}}\n"));
        let get = read_request(&mut reader).await.unwrap().unwrap();
        assert_eq!((get.method.as_str(), get.body), ("GET", None));
        assert!(read_request(&mut reader).await.unwrap().is_none());
    }
}
