//! What no input may do, one function per fuzz target. libFuzzer drives them under
//! `make fuzz`; `make test` replays the committed corpora and a few thousand mutations
//! of them (`tests/smoke.rs`). A failed assertion or a panic is a finding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{Method, Request as HttpRequest, header};
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use session_api::{ApiError, Operation, merge_patch};
use session_auditor::Auditor;
use session_store::{
    Codec, DjangoCodec, DjangoKeys, JsonCodec, Secret, SessionData, SessionKey, StoreConfig,
    Timestamp,
};

/// Limit on request bodies in the API target, small so that the fuzzer reaches it.
const MAX_BODY: usize = 4096;

/// A key parses exactly when it is 32 characters of `[a-z0-9]`, and then unchanged.
pub fn session_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let well_formed = text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match SessionKey::parse(&text) {
        Ok(key) => {
            assert!(well_formed, "accepted a malformed key");
            assert_eq!(key.as_str(), text);
        }
        Err(_) => assert!(!well_formed, "refused a well-formed key"),
    }
}

/// The `django` codec decodes anything without panicking, and what it decodes
/// encodes back to the same data. The first byte chooses how the rest is presented:
/// as a whole stored value; as a value to sign (so the signature passes); as the bytes
/// of a payload, plain or as a zlib stream, wrapped and signed.
pub fn django_decode(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let codec = DjangoCodec::new(&DjangoKeys {
        secret_key: Secret::new("fuzz-secret"),
        fallbacks: vec![Secret::new("fuzz-old-secret")],
    });
    let text = String::from_utf8_lossy(rest);
    let sign = |value: &str| codec.sign(value).expect("a codec with keys signs");
    let raw = match mode % 4 {
        0 => text.to_string(),
        1 => sign(&text),
        2 => sign(&format!("{}:1a2b3c", URL_SAFE_NO_PAD.encode(rest))),
        _ => sign(&format!(".{}:1a2b3c", URL_SAFE_NO_PAD.encode(rest))),
    };
    if let Ok(decoded) = codec.decode(&raw) {
        round_trips(&codec, &decoded);
        let _ = codec.expiry_of(&decoded);
        let _ = codec.expiry_in_data(&raw);
    }
    if let Ok(decoded) = JsonCodec.decode(&text) {
        round_trips(&JsonCodec, &decoded);
    }
}

fn round_trips(codec: &dyn Codec, data: &SessionData) {
    let encoded = codec
        .encode(data, Timestamp::from_epoch_seconds(1_700_000_000))
        .expect("codecs with keys encode");
    assert_eq!(
        codec.decode(&encoded).as_ref(),
        Ok(data),
        "data did not survive encode and decode"
    );
}

/// Any request, however malformed, parses to an operation or to a 4xx problem; a
/// merge patch keeps session data an object and removes exactly the keys it nulls.
pub fn api_request(data: &[u8]) {
    let Some(request) = request_from(data) else {
        return;
    };
    match Operation::parse(&request, MAX_BODY) {
        Err(e) => check_problem(e),
        Ok(Operation::Patch { patch, .. }) => {
            let fields = patch.as_object().expect("a parsed patch is an object");
            let mut session = SessionData::new();
            session.insert("kept".into(), json!({"nested": [1, 2]}));
            session.insert("removed".into(), json!(true));
            merge_patch(&mut session, &patch);
            for (name, value) in fields {
                assert_eq!(
                    session.contains_key(name),
                    !value.is_null(),
                    "a merge patch mishandled {name:?}"
                );
            }
            if !fields.contains_key("kept") {
                assert_eq!(session["kept"], json!({"nested": [1, 2]}));
            }
        }
        Ok(Operation::Create { data, .. } | Operation::Replace { data, .. }) => {
            assert!(serde_json::to_string(&data).is_ok_and(|s| s.len() <= MAX_BODY));
        }
        Ok(_) => {}
    }
}

fn check_problem(e: ApiError) {
    let status = e.status();
    assert!(status.is_client_error(), "bad input gave {status}: {e}");
    let response = e.into_response();
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

/// Bytes as a request: the first three choose the method, the path and the headers,
/// the rest up to a NUL is the key or path segment, and what follows is the body.
fn request_from(data: &[u8]) -> Option<Request> {
    let (head, tail) = data.split_at_checked(3)?;
    let (segment, body) = match tail.iter().position(|&b| b == 0) {
        Some(i) => (&tail[..i], &tail[i + 1..]),
        None => (tail, &[][..]),
    };
    let segment: String = String::from_utf8_lossy(segment)
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '?' && *c != '#')
        .collect();
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    let method = methods[usize::from(head[0]) % methods.len()].clone();
    let path = match head[1] % 6 {
        0 => "/sessions".to_owned(),
        1 => format!("/sessions/{segment}"),
        2 => format!("/sessions/{segment}/cycle"),
        3 => format!("/sessions/{segment}/touch"),
        4 => format!("/sessions/{}", "k".repeat(32)),
        _ => format!("/{segment}"),
    };
    let content_types = [
        "application/json",
        "application/merge-patch+json",
        "application/json; charset=utf-8",
        "text/plain",
    ];
    let mut builder = HttpRequest::builder().method(method).uri(path).header(
        header::CONTENT_TYPE,
        content_types[usize::from(head[2] & 3)],
    );
    let tags = ["\"1\"", "*", "W/\"1\"", "1", "\"x\"", "\"1\", \"2\""];
    if head[2] & 4 != 0 {
        builder = builder.header(
            header::IF_MATCH,
            tags[usize::from(head[2] >> 3) % tags.len()],
        );
    }
    let body = if body.is_empty() {
        Body::Empty
    } else if head[2] & 0x80 != 0 {
        Body::Binary(body.to_vec())
    } else {
        Body::Text(String::from_utf8_lossy(body).into_owned())
    };
    builder.body(body).ok()
}

/// Any event reaches a verdict: the records before the first failure are audited, the
/// failure is reported by its sequence number, and the counts add up.
pub fn stream_record(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(auditor) = Auditor::new(&StoreConfig::default()) else {
        return;
    };
    let Ok(report) = auditor.audit_batch(&event) else {
        return;
    };
    let c = &report.counts;
    let audited = c.created + c.updated + c.deleted + c.expired;
    assert_eq!(audited, report.lines.len() as u64);
    let failures = report.response.batch_item_failures.len() as u64;
    assert_eq!(failures, c.failures);
    assert!(failures <= 1, "the batch goes on after a failure");
    if failures == 0 {
        assert_eq!(audited + c.skipped, c.batch_size, "a record was lost");
    } else {
        assert!(audited + c.skipped < c.batch_size);
    }
}
