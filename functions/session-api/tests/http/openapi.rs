//! `openapi.yaml` and the implementation agree: every documented (path, method, status)
//! is produced by a request here, and nothing here produces an undocumented one.

use std::collections::BTreeSet;

use crate::support::{Api, Payload, api};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use session_store::{
    Codec, CodecConfig, DjangoCodec, DjangoKeys, DjangoSecrets, Principals, Secret, Timestamp,
};

type Triple = (String, String, u16);

fn documented() -> BTreeSet<Triple> {
    let text = std::fs::read_to_string(testkit::workspace_root().join("openapi.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        let path = path.as_str().unwrap();
        for method in ["get", "head", "put", "patch", "delete", "post"] {
            let Some(responses) = item.get(method).and_then(|op| op.get("responses")) else {
                continue;
            };
            for status in responses.as_mapping().unwrap().keys() {
                let status: u16 = status.as_str().unwrap().parse().unwrap();
                out.insert((path.to_owned(), method.to_uppercase(), status));
            }
        }
    }
    out
}

struct Recorder<'a, S: Principals> {
    api: &'a Api<S>,
    seen: BTreeSet<Triple>,
}

impl<S: Principals> Recorder<'_, S> {
    async fn expect(
        &mut self,
        template: &str,
        method: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Payload<'_>,
        status: u16,
    ) {
        let path = template.replace("{key}", key).replace("{id}", key);
        let path = path.replace("{principal}", "user%2F7");
        let reply = self.api.call(method, &path, headers, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
        if reply.header("content-type") == Some("application/json") {
            let body = reply.json();
            let fields: BTreeSet<_> = body.as_object().unwrap().keys().cloned().collect();
            let want: &[&str] = if template.starts_with("/principals") && method == "DELETE" {
                &["complete", "revoked"]
            } else if template.starts_with("/principals") {
                &["next", "principal", "sessions"]
            } else {
                &[
                    "created_at",
                    "data",
                    "expires_at",
                    "principal",
                    "session_key",
                    "version",
                ]
            };
            assert_eq!(fields, want.iter().map(|f| f.to_string()).collect());
        } else if method != "HEAD" && status >= 400 {
            reply.assert_problem(status);
        }
        self.seen
            .insert((template.to_owned(), method.to_owned(), status));
    }
}

/// One long walk through every route: its future holds every request's, more than a
/// test thread's stack, so it runs on a thread of its own with room for it.
#[test]
fn every_documented_response_is_produced_and_no_other() {
    let walk = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(every_documented_response())
        })
        .expect("a thread");
    if let Err(panic) = walk.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn every_documented_response() {
    let live = api().await;
    let mut r = Recorder {
        api: &live,
        seen: BTreeSet::new(),
    };
    let json_ct = [("content-type", "application/json")];
    let merge_ct = [("content-type", "application/merge-patch+json")];
    let text_ct = [("content-type", "text/plain")];
    let huge = json!({"data": {"blob": "x".repeat(1 << 20)}}).to_string();
    let huge_patch = json!({"blob": "x".repeat(1 << 20)}).to_string();
    let (none, bad, missing) = ("", "BAD", "m".repeat(32));
    let (one, coll, cyc, tch) = (
        "/sessions/{key}",
        "/sessions",
        "/sessions/{key}/cycle",
        "/sessions/{key}/touch",
    );

    r.expect(
        coll,
        "POST",
        none,
        &json_ct,
        Payload::Text(r#"{"data":{"a":1}}"#),
        201,
    )
    .await;
    r.expect(
        coll,
        "POST",
        none,
        &json_ct,
        Payload::Text(r#"{"data":1}"#),
        400,
    )
    .await;
    r.expect(coll, "POST", none, &json_ct, Payload::Text(&huge), 413)
        .await;
    r.expect(coll, "POST", none, &text_ct, Payload::Text("{}"), 415)
        .await;
    let key = live.create(json!({"a": 1})).await;
    let key = key.as_str();

    for method in ["GET", "HEAD"] {
        r.expect(one, method, key, &[], Payload::None, 200).await;
        r.expect(one, method, bad, &[], Payload::None, 400).await;
        r.expect(one, method, &missing, &[], Payload::None, 404)
            .await;
    }
    let put = r#"{"data":{"b":2}}"#;
    r.expect(one, "PUT", key, &json_ct, Payload::Text(put), 200)
        .await;
    r.expect(one, "PUT", key, &json_ct, Payload::Text("{}"), 400)
        .await;
    r.expect(one, "PUT", &missing, &json_ct, Payload::Text(put), 404)
        .await;
    let stale = [("content-type", "application/json"), ("if-match", "\"1\"")];
    r.expect(one, "PUT", key, &stale, Payload::Text(put), 412)
        .await;
    r.expect(one, "PUT", key, &json_ct, Payload::Text(&huge), 413)
        .await;
    r.expect(one, "PUT", key, &text_ct, Payload::Text(put), 415)
        .await;

    r.expect(
        one,
        "PATCH",
        key,
        &merge_ct,
        Payload::Text(r#"{"c":3}"#),
        200,
    )
    .await;
    r.expect(one, "PATCH", key, &merge_ct, Payload::Text("[]"), 400)
        .await;
    r.expect(one, "PATCH", &missing, &merge_ct, Payload::Text("{}"), 404)
        .await;
    let stale = [
        ("content-type", "application/merge-patch+json"),
        ("if-match", "\"1\""),
    ];
    r.expect(one, "PATCH", key, &stale, Payload::Text("{}"), 412)
        .await;
    r.expect(
        one,
        "PATCH",
        key,
        &merge_ct,
        Payload::Text(&huge_patch),
        413,
    )
    .await;
    r.expect(one, "PATCH", key, &json_ct, Payload::Text("{}"), 415)
        .await;

    for route in [cyc, tch] {
        r.expect(route, "POST", bad, &[], Payload::None, 400).await;
        r.expect(route, "POST", &missing, &[], Payload::None, 404)
            .await;
        let stale = [("if-match", "\"9\"")];
        r.expect(route, "POST", key, &stale, Payload::None, 412)
            .await;
    }
    r.expect(tch, "POST", key, &[], Payload::None, 200).await;
    let cycled = live.cycle(key).await;
    assert_eq!(cycled.status, 200);
    r.seen.insert((cyc.to_owned(), "POST".to_owned(), 200));
    let key = cycled.key();
    let key = key.as_str();

    r.expect(
        one,
        "DELETE",
        key,
        &[("if-match", "\"1\"")],
        Payload::None,
        412,
    )
    .await;
    r.expect(one, "DELETE", bad, &[], Payload::None, 400).await;
    r.expect(one, "DELETE", key, &[], Payload::None, 204).await;

    // A principal's sessions: the principal is `user/7`, percent-encoded in the path.
    let (listing, revoke) = (
        "/principals/{principal}/sessions",
        "/principals/{principal}/sessions/{id}",
    );
    let created = live
        .post_json(coll, &json!({"data": {}, "principal": "user/7"}))
        .await;
    assert_eq!(created.json()["principal"], "user/7");
    let id = session_store::SessionHandle::of(
        &session_store::SessionKey::parse(&created.key()).unwrap(),
    );
    r.expect(listing, "GET", none, &[], Payload::None, 200)
        .await;
    let bad_limit = format!("{listing}?limit=0");
    r.expect(&bad_limit, "GET", none, &[], Payload::None, 400)
        .await;
    r.seen.remove(&(bad_limit, "GET".to_owned(), 400));
    r.seen.insert((listing.to_owned(), "GET".to_owned(), 400));
    r.expect(
        revoke,
        "DELETE",
        "0123456789abcdeg",
        &[],
        Payload::None,
        400,
    )
    .await;
    r.expect(revoke, "DELETE", id.as_str(), &[], Payload::None, 204)
        .await;
    r.expect(revoke, "DELETE", id.as_str(), &[], Payload::None, 404)
        .await;
    r.expect(listing, "DELETE", none, &[], Payload::None, 200)
        .await;
    let bad_except = format!("{listing}?except=BAD");
    r.expect(&bad_except, "DELETE", none, &[], Payload::None, 400)
        .await;
    r.seen.remove(&(bad_except, "DELETE".to_owned(), 400));
    r.seen
        .insert((listing.to_owned(), "DELETE".to_owned(), 400));
    // A revocation that the deadline cuts short: each session's removal is slow (see
    // `Fault::Slow`), so the walk stops with time left for its watermark and answers
    // what it did.
    let (slow, proxy) = crate::support::api_behind_proxy().await;
    for _ in 0..30 {
        let made = slow
            .post_json("/sessions", &json!({"data": {}, "principal": "user/7"}))
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
    }
    proxy.inject("DeleteItem", testkit::proxy::Fault::Slow, None);
    let hurried = slow.near_deadline(
        "DELETE",
        "/principals/user%2F7/sessions",
        Payload::None,
        std::time::Duration::from_millis(3_000),
    );
    let cut_short = slow.send_request(hurried).await;
    assert_eq!(cut_short.status, 202, "{}", cut_short.text);
    assert_eq!(cut_short.json()["complete"], json!(false));
    let revoked = cut_short.json()["revoked"].as_u64().unwrap_or(0);
    assert!((1..30).contains(&revoked), "{}", cut_short.text);
    r.seen
        .insert((listing.to_owned(), "DELETE".to_owned(), 202));

    // The same operations with DynamoDB unreachable.
    let down = crate::support::unreachable_api().await;
    let mut d = Recorder {
        api: &down,
        seen: r.seen,
    };
    d.expect(coll, "POST", none, &[], Payload::None, 503).await;
    for method in ["GET", "HEAD", "DELETE"] {
        d.expect(one, method, &missing, &[], Payload::None, 503)
            .await;
    }
    d.expect(one, "PUT", &missing, &json_ct, Payload::Text(put), 503)
        .await;
    d.expect(one, "PATCH", &missing, &merge_ct, Payload::Text("{}"), 503)
        .await;
    d.expect(cyc, "POST", &missing, &[], Payload::None, 503)
        .await;
    d.expect(tch, "POST", &missing, &[], Payload::None, 503)
        .await;
    d.expect(listing, "DELETE", none, &[], Payload::None, 503)
        .await;
    d.expect(listing, "GET", none, &[], Payload::None, 503)
        .await;
    d.expect(
        revoke,
        "DELETE",
        "0123456789abcdef",
        &[],
        Payload::None,
        503,
    )
    .await;

    // A session of the django codec whose stored data inflates past the cap.
    let django = crate::support::api_with(|c| {
        c.codec = CodecConfig::Django(DjangoSecrets::Keys(DjangoKeys {
            secret_key: Secret::new("openapi-secret"),
            fallbacks: vec![],
        }));
    })
    .await;
    let mut o = Recorder {
        api: &django,
        seen: d.seen,
    };
    let key = django.create(json!({"a": 1})).await;
    let pad = json!({ "pad": " ".repeat(2 * 1024 * 1024) });
    let bomb = DjangoCodec::new(&DjangoKeys {
        secret_key: Secret::new("openapi-secret"),
        fallbacks: vec![],
    })
    .with_max_decompressed(16 * 1024 * 1024)
    .encode(
        pad.as_object().unwrap(),
        Timestamp::from_epoch_seconds(crate::support::START),
    )
    .unwrap();
    let mut item = django.raw_item(&key).await.unwrap();
    item.insert("data".into(), AttributeValue::S(bomb));
    django.put_raw(item).await;
    o.expect(one, "GET", &key, &[], Payload::None, 409).await;
    o.expect(one, "PATCH", &key, &merge_ct, Payload::Text("{}"), 409)
        .await;
    o.expect(cyc, "POST", &key, &[], Payload::None, 409).await;
    o.expect(tch, "POST", &key, &[], Payload::None, 409).await;

    // On a global table, a session whose home is another region is written only there.
    let global = crate::support::api_with(|c| c.region = Some("eu-west-1".into())).await;
    let mut g = Recorder {
        api: &global,
        seen: o.seen,
    };
    let key = global.create(json!({"a": 1})).await;
    let mut item = global.raw_item(&key).await.unwrap();
    item.insert("home_region".into(), AttributeValue::S("us-east-1".into()));
    global.put_raw(item).await;
    let put_body = Payload::Text(r#"{"data": {"a": 2}}"#);
    g.expect(one, "PUT", &key, &json_ct, put_body, 421).await;
    g.expect(one, "PATCH", &key, &merge_ct, Payload::Text("{}"), 421)
        .await;
    g.expect(one, "DELETE", &key, &[], Payload::None, 421).await;
    g.expect(cyc, "POST", &key, &[], Payload::None, 421).await;
    g.expect(tch, "POST", &key, &[], Payload::None, 421).await;
    g.expect(one, "GET", &key, &[], Payload::None, 200).await;
    let refused = global
        .call("DELETE", &format!("/sessions/{key}"), &[], Payload::None)
        .await;
    assert_eq!(
        refused.json()["home_region"],
        "us-east-1",
        "{}",
        refused.text
    );
    // Another region's session is revoked by its handle, or spared, only there.
    let owned = global
        .post_json("/sessions", &json!({"data": {}, "principal": "user/7"}))
        .await
        .key();
    let mut item = global.raw_item(&owned).await.unwrap();
    item.insert("home_region".into(), AttributeValue::S("us-east-1".into()));
    global.put_raw(item).await;
    let handle =
        session_store::SessionHandle::of(&session_store::SessionKey::parse(&owned).unwrap());
    g.expect(revoke, "DELETE", handle.as_str(), &[], Payload::None, 421)
        .await;
    let sparing = format!("{listing}?except={owned}");
    g.expect(&sparing, "DELETE", none, &[], Payload::None, 421)
        .await;
    g.seen.remove(&(sparing, "DELETE".to_owned(), 421));
    g.seen
        .insert((listing.to_owned(), "DELETE".to_owned(), 421));
    let o = g;

    let documented = documented();
    let never_exercised: Vec<_> = documented.difference(&o.seen).collect();
    let undocumented: Vec<_> = o.seen.difference(&documented).collect();
    assert!(
        never_exercised.is_empty(),
        "documented but never produced: {never_exercised:?}"
    );
    assert!(
        undocumented.is_empty(),
        "produced but not documented: {undocumented:?}"
    );
}
