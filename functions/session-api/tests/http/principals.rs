//! Sessions by principal over HTTP: a session's principal on create, replace and read;
//! a principal's listing (by handle, never by key, newest first, paged by an opaque
//! cursor); revoking one session.

use crate::support::{Api, JSON, Payload, api, put};
use serde_json::{Value, json};
use session_store::{Principals, SessionHandle, SessionKey};

fn handle(key: &str) -> String {
    SessionHandle::of(&SessionKey::parse(key).unwrap())
        .as_str()
        .to_owned()
}

async fn create_for<S: Principals>(api: &Api<S>, principal: Value) -> Value {
    let reply = api
        .post_json(
            "/sessions",
            &json!({"data": {"n": 1}, "principal": principal}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

/// Every page of a principal's listing, `limit` at a time.
async fn pages<S: Principals>(api: &Api<S>, path: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let reply = api.get(&url).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let page = reply.json();
        out.push(page.clone());
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn a_principals_sessions_are_listed_by_handle_and_revoked_one_by_one<S: Principals>(
    api: Api<S>,
) {
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(create_for(&api, json!("user/7")).await);
        api.clock.advance(std::time::Duration::from_secs(5));
    }
    create_for(&api, json!("someone-else")).await;
    let key = |s: &Value| s["session_key"].as_str().unwrap().to_owned();
    let read = api.get(&format!("/sessions/{}", key(&made[0]))).await;
    assert_eq!(read.json()["principal"], "user/7");

    let path = "/principals/user%2F7/sessions";
    let all = pages(&api, path, 2).await;
    assert_eq!(all.len(), 2);
    let listed: Vec<Value> = all
        .iter()
        .flat_map(|p| p["sessions"].as_array().unwrap().clone())
        .collect();
    let newest_first: Vec<String> = made.iter().rev().map(|s| handle(&key(s))).collect();
    assert_eq!(
        listed
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        newest_first
    );
    assert_eq!(listed[0]["created_at"], made[2]["created_at"]);
    assert_eq!(listed[0]["expires_at"], made[2]["expires_at"]);
    assert_eq!(all[0]["principal"], "user/7");
    let text = serde_json::to_string(&all).unwrap();
    for s in &made {
        assert!(!text.contains(&key(s)), "a key in a listing: {text}");
    }

    // Revoke the newest: it is gone, and only for its own principal.
    let id = &newest_first[0];
    let other = api
        .call(
            "DELETE",
            &format!("/principals/someone-else/sessions/{id}"),
            &[],
            Payload::None,
        )
        .await;
    other.assert_problem(404);
    let revoked = api
        .call("DELETE", &format!("{path}/{id}"), &[], Payload::None)
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    api.get(&format!("/sessions/{}", key(&made[2])))
        .await
        .assert_problem(404);
    api.call("DELETE", &format!("{path}/{id}"), &[], Payload::None)
        .await
        .assert_problem(404);
    let left = pages(&api, path, 50).await;
    assert_eq!(left[0]["sessions"].as_array().unwrap().len(), 2);

    // A PUT without a principal keeps it; null clears it; another one moves it.
    let first = key(&made[0]);
    let kept = put(&api, &first, &json!({"data": {"n": 2}}), None).await;
    assert_eq!(kept.json()["principal"], "user/7");
    let moved = put(
        &api,
        &first,
        &json!({"data": {}, "principal": "user-8"}),
        None,
    )
    .await;
    assert_eq!(moved.json()["principal"], "user-8");
    let listed_under = |page: &Value| page["sessions"].as_array().unwrap().len();
    assert_eq!(listed_under(&pages(&api, path, 50).await[0]), 1);
    assert_eq!(
        pages(&api, "/principals/user-8/sessions", 50).await[0]["sessions"][0]["id"],
        json!(handle(&first))
    );
    let cleared = put(&api, &first, &json!({"data": {}, "principal": null}), None).await;
    assert_eq!(cleared.json()["principal"], Value::Null);
    assert_eq!(
        listed_under(&pages(&api, "/principals/user-8/sessions", 50).await[0]),
        0
    );
}

async fn logging_out_everywhere_but_here_revokes_every_other_session<S: Principals>(api: Api<S>) {
    let mut keys = Vec::new();
    for _ in 0..3 {
        let s = create_for(&api, json!("user-9")).await;
        keys.push(s["session_key"].as_str().unwrap().to_owned());
    }
    let mine = &keys[0];
    let reply = api
        .call(
            "DELETE",
            &format!("/principals/user-9/sessions?except={mine}"),
            &[],
            Payload::None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json(), json!({"revoked": 2, "complete": true}));
    assert_eq!(api.get(&format!("/sessions/{mine}")).await.status, 200);
    for other in &keys[1..] {
        api.get(&format!("/sessions/{other}"))
            .await
            .assert_problem(404);
    }
    let left = pages(&api, "/principals/user-9/sessions", 50).await;
    assert_eq!(left[0]["sessions"][0]["id"], json!(handle(mine)));
    assert_eq!(left[0]["sessions"].as_array().unwrap().len(), 1);
}

/// With `SESSION_MAX_PER_PRINCIPAL=2`, a third `POST /sessions` for one principal
/// revokes the first: it is a 404, and the listing shows the two newest.
async fn one_session_past_the_cap_revokes_the_oldest<S: Principals>(api: Api<S>) {
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(create_for(&api, json!("capped")).await);
        api.clock.advance(std::time::Duration::from_secs(1));
    }
    let key = |s: &Value| s["session_key"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get(&format!("/sessions/{}", key(&made[0])))
            .await
            .status,
        404
    );
    for s in &made[1..] {
        assert_eq!(api.get(&format!("/sessions/{}", key(s))).await.status, 200);
    }
    let listed: Vec<String> = pages(&api, "/principals/capped/sessions", 50)
        .await
        .iter()
        .flat_map(|p| p["sessions"].as_array().unwrap().clone())
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, [handle(&key(&made[2])), handle(&key(&made[1]))]);
}

#[tokio::test]
async fn one_session_past_the_cap_revokes_the_oldest_in_dynamodb() {
    one_session_past_the_cap_revokes_the_oldest(
        crate::support::api_with(|c| c.max_per_principal = Some(2)).await,
    )
    .await;
}

#[tokio::test]
async fn logging_out_everywhere_but_here_in_dynamodb() {
    logging_out_everywhere_but_here_revokes_every_other_session(
        crate::support::api_with(|_| {}).await,
    )
    .await;
}

#[tokio::test]
async fn a_principals_sessions_are_listed_and_revoked_in_dynamodb() {
    a_principals_sessions_are_listed_by_handle_and_revoked_one_by_one(
        crate::support::api_with(|_| {}).await,
    )
    .await;
}

#[tokio::test]
async fn bad_principals_limits_cursors_and_ids_are_400s() {
    let api = api().await;
    let long = "p".repeat(257);
    for body in [
        json!({"principal": ""}),
        json!({"principal": long}),
        json!({"principal": "a\u{7}b"}),
        json!({"principal": 7}),
    ] {
        api.call(
            "POST",
            "/sessions",
            &[JSON],
            Payload::Text(&body.to_string()),
        )
        .await
        .assert_problem(400);
    }
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=",
        "cursor=1.0123456789abcdef",
    ] {
        api.get(&format!("/principals/u/sessions?{query}"))
            .await
            .assert_problem(400);
    }
    api.get(&format!("/principals/{long}/sessions"))
        .await
        .assert_problem(400);
    api.get("/principals/%FF/sessions")
        .await
        .assert_problem(400);
    api.call(
        "DELETE",
        "/principals/u/sessions?except=BAD",
        &[],
        Payload::None,
    )
    .await
    .assert_problem(400);
    for id in ["abc", "0123456789ABCDEF", "0123456789abcdeg"] {
        api.call(
            "DELETE",
            &format!("/principals/u/sessions/{id}"),
            &[],
            Payload::None,
        )
        .await
        .assert_problem(400);
    }
    let wrong = api
        .call("POST", "/principals/u/sessions", &[], Payload::None)
        .await;
    assert_eq!(
        (wrong.status, wrong.header("allow")),
        (405, Some("GET, DELETE"))
    );
    assert_eq!(api.items().await.len(), 0, "nothing written");
}

/// Takes the session's entry out of the principal index, as an index that has not listed
/// it yet would.
async fn unlisted<S: Principals>(api: &Api<S>, key: &str) {
    let mut item = api.raw_item(key).await.unwrap();
    item.remove("principal_position");
    api.put_raw(item).await;
}

async fn log_out_everywhere<S: Principals>(
    api: &Api<S>,
    principal: &str,
    except: Option<&str>,
) -> Value {
    let path = match except {
        Some(k) => format!("/principals/{principal}/sessions?except={k}"),
        None => format!("/principals/{principal}/sessions"),
    };
    let reply = api.call("DELETE", &path, &[], Payload::None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

#[tokio::test]
async fn after_log_out_everywhere_no_route_brings_back_a_session_the_index_missed() {
    let api = api().await;
    let made = create_for(&api, json!("alice")).await;
    let key = made["session_key"].as_str().unwrap();
    unlisted(&api, key).await;
    api.clock.advance(std::time::Duration::from_secs(1));
    let done = log_out_everywhere(&api, "alice", None).await;
    assert_eq!(done, json!({"revoked": 0, "complete": true}));
    let one = format!("/sessions/{key}");
    api.get(&one).await.assert_problem(404);
    for body in [
        json!({"data": {"n": 2}, "principal": "alice"}),
        json!({"data": {"n": 2}, "principal": null}),
        json!({"data": {"n": 2}, "principal": "mallory"}),
        json!({"data": {"n": 2}}),
    ] {
        put(&api, key, &body, None).await.assert_problem(404);
        api.get(&one).await.assert_problem(404);
    }
    crate::support::patch(&api, key, &json!({"n": 3}), None)
        .await
        .assert_problem(404);
    for route in ["touch", "cycle"] {
        api.call("POST", &format!("{one}/{route}"), &[], Payload::None)
            .await
            .assert_problem(404);
    }
    api.get(&one).await.assert_problem(404);
    // A later revocation still covers it: the time it got its principal never moved.
    api.clock.advance(std::time::Duration::from_secs(1));
    log_out_everywhere(&api, "alice", None).await;
    api.get(&one).await.assert_problem(404);
}

/// `DELETE /principals/{principal}/sessions` with `left` before Lambda's deadline.
async fn log_out_everywhere_within<S: Principals>(
    api: &Api<S>,
    path: &str,
    left: std::time::Duration,
) -> crate::support::Reply {
    api.send_request(api.near_deadline("DELETE", path, Payload::None, left))
        .await
}

#[tokio::test]
async fn a_later_log_out_everywhere_spares_only_its_own_exception() {
    let (api, proxy) = crate::support::api_behind_proxy().await;
    let key = |s: Value| s["session_key"].as_str().unwrap().to_owned();
    let attackers = key(create_for(&api, json!("alice")).await);
    for _ in 0..8 {
        create_for(&api, json!("alice")).await;
    }
    // The attacker's own "log out everywhere but here", cut short by its deadline.
    proxy.inject("DeleteItem", testkit::proxy::Fault::Slow, None);
    let path = format!("/principals/alice/sessions?except={attackers}");
    let cut = log_out_everywhere_within(&api, &path, std::time::Duration::from_millis(1_200)).await;
    assert_eq!(cut.status, 202, "{}", cut.text);
    proxy.heal();
    api.clock.advance(std::time::Duration::from_secs(1));
    let users = key(create_for(&api, json!("alice")).await);
    let done = log_out_everywhere(&api, "alice", Some(&users)).await;
    assert_eq!(done["complete"], json!(true));
    api.get(&format!("/sessions/{attackers}"))
        .await
        .assert_problem(404);
    assert_eq!(api.get(&format!("/sessions/{users}")).await.status, 200);
    let left = pages(&api, "/principals/alice/sessions", 50).await;
    assert_eq!(
        left[0]["sessions"],
        json!([{
            "id": handle(&users),
            "created_at": left[0]["sessions"][0]["created_at"],
            "expires_at": left[0]["sessions"][0]["expires_at"],
        }])
    );
}

/// Sessions the walk can never remove (here expired ones awaiting TTL, newer than the
/// live ones, so at the top of the index) cost it a read, not its time: calls that
/// each settle a few sessions before their deadline reach the end, whether they share
/// one time (each resumes where the last stopped) or not (each starts again).
#[tokio::test]
async fn log_out_everywhere_completes_through_202s_past_sessions_it_cannot_remove() {
    // More than one call removes: a removal takes 150 ms here, and a call has 700 ms.
    const LIVE: u64 = 7;
    let (api, proxy) = crate::support::api_behind_proxy().await;
    for (principal, later_each_time) in [("bob", false), ("carol", true)] {
        let mut live = Vec::new();
        for _ in 0..LIVE {
            live.push(create_for(&api, json!(principal)).await["session_key"].clone());
        }
        api.clock.advance(std::time::Duration::from_secs(1));
        for _ in 0..150 {
            let body = json!({"data": {}, "principal": principal, "ttl_seconds": 1});
            assert_eq!(api.post_json("/sessions", &body).await.status, 201);
        }
        api.clock.advance(std::time::Duration::from_secs(5));
        proxy.inject("DeleteItem", testkit::proxy::Fault::Slow, None);
        let path = format!("/principals/{principal}/sessions");
        let (mut calls, mut revoked) = (0, 0);
        loop {
            calls += 1;
            assert!(calls <= 12, "{principal}: stalled after {revoked} revoked");
            let reply =
                log_out_everywhere_within(&api, &path, std::time::Duration::from_millis(1_500))
                    .await;
            let body = reply.json();
            let settled = body["revoked"].as_u64().unwrap();
            revoked += settled;
            if reply.status == 200 {
                assert_eq!(body["complete"], json!(true));
                break;
            }
            assert_eq!(
                (reply.status, &body["complete"]),
                (202, &json!(false)),
                "{}",
                reply.text
            );
            assert!(settled > 0, "{principal}: a 202 that removed nothing");
            if later_each_time {
                api.clock.advance(std::time::Duration::from_millis(10));
            }
        }
        proxy.heal();
        assert_eq!(revoked, LIVE, "{principal}");
        assert!(calls >= 2, "{principal}: one call settled all");
        for key in &live {
            api.get(&format!("/sessions/{}", key.as_str().unwrap()))
                .await
                .assert_problem(404);
        }
    }
}

#[tokio::test]
async fn with_the_principal_routes_disabled_they_are_not_there_and_no_body_takes_a_principal() {
    let api = api()
        .await
        .with_principal_routes(session_store::PrincipalRoutes::Disabled);
    for (method, path) in [
        ("GET", "/principals/u/sessions"),
        ("DELETE", "/principals/u/sessions"),
        ("DELETE", "/principals/u/sessions/0123456789abcdef"),
    ] {
        api.call(method, path, &[], Payload::None)
            .await
            .assert_problem(404);
    }
    let owned = json!({"data": {}, "principal": "u"});
    api.post_json("/sessions", &owned).await.assert_problem(400);
    let key = api.create(json!({"n": 1})).await;
    for body in [owned, json!({"data": {}, "principal": null})] {
        put(&api, &key, &body, None).await.assert_problem(400);
    }
    assert_eq!(
        put(&api, &key, &json!({"data": {}}), None).await.status,
        200
    );
    let items = api.items().await;
    assert_eq!(items.len(), 1);
    assert!(!items[0].contains_key("principal"));
}

/// With a cap, the registry's count follows the session's write. When the count fails,
/// the caller gets 503 and the session is gone: none outlives the cap uncounted, nor
/// keeps the login's data without its principal.
#[tokio::test]
async fn a_login_whose_count_against_the_cap_fails_leaves_no_session_outside_the_count() {
    use testkit::proxy::Fault;
    let (api, proxy) =
        crate::support::api_behind_proxy_with(|c| c.max_per_principal = Some(2)).await;
    let owned = json!({"data": {}, "principal": "dana"});
    // The session's PutItem passes; the registry's every try fails.
    proxy.inject_after("PutItem", 1, Fault::InternalServerError, None);
    api.post_json("/sessions", &owned).await.assert_problem(503);
    proxy.heal();
    // A login into an anonymous session: its write is an UpdateItem.
    let key = api.create(json!({"n": 1})).await;
    proxy.inject("PutItem", Fault::InternalServerError, None);
    put(&api, &key, &owned, None).await.assert_problem(503);
    proxy.heal();
    let items = api.items().await;
    assert!(items.is_empty(), "{items:?}");
    api.get(&format!("/sessions/{key}"))
        .await
        .assert_problem(404);
}
