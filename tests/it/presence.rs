//! Presence and cursors: who sees whom viewing a project, what reaches them, and that a
//! viewer is gone when it leaves, falls silent or loses its access.
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    error_codes, spawn, spawn_on, spawn_with,
    ws::{connect, next_json, subscribe, Ws},
    TestApp, TestUser,
};

const PRESENCE: &str = "subscription($p: ID, $t: String, $n: String) { presence(projectId: $p, token: $t, name: $n) {
  viewerId viewerKey full viewerCount left viewers { id name kind cursor { x y } selection state updatedAt } } }";
const UPDATE: &str = "mutation($p: ID, $t: String, $k: String!, $c: CursorInput, $s: String, $st: String) {
  updatePresence(projectId: $p, token: $t, viewerKey: $k, cursor: $c, selection: $s, state: $st) { ok userErrors { code field message } } }";

/// A viewer: its socket, id and key.
struct Viewer {
    ws: Ws,
    id: String,
    key: String,
}

/// The next result of the presence operation: its frame, or its error's code.
async fn next_result(ws: &mut Ws) -> Result<Value, String> {
    loop {
        let m = next_json(ws).await;
        if m["id"] != "p" {
            continue;
        }
        assert_eq!(m["type"], "next", "{m}");
        if let Some(code) = m["payload"]["errors"][0]["extensions"]["code"].as_str() {
            return Err(code.to_string());
        }
        return Ok(m["payload"]["data"]["presence"].clone());
    }
}

/// Opens a socket (signed in with `token` when given) and subscribes with `vars`; the
/// first frame, or the error the subscription was refused with.
async fn open(app: &TestApp, token: Option<&str>, vars: Value) -> Result<(Viewer, Value), String> {
    let mut ws = connect(app, token).await;
    subscribe(&mut ws, "p", PRESENCE, vars).await;
    let first = next_result(&mut ws).await?;
    assert_eq!(first["full"], true, "{first}");
    Ok((
        Viewer {
            id: first["viewerId"].as_str().unwrap().to_string(),
            key: first["viewerKey"].as_str().unwrap().to_string(),
            ws,
        },
        first,
    ))
}

async fn member(app: &TestApp, user: &TestUser, project: &str) -> (Viewer, Value) {
    open(app, Some(&user.token), json!({ "p": project }))
        .await
        .expect("a member joins")
}

async fn guest(app: &TestApp, token: &str, name: &str) -> (Viewer, Value) {
    open(app, None, json!({ "t": token, "n": name }))
        .await
        .expect("a guest joins")
}

/// Reads frames until one satisfies `pred`; returns it.
async fn frame_where(v: &mut Viewer, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let f = next_result(&mut v.ws).await.expect("a frame");
        if pred(&f) {
            return f;
        }
    }
}

fn viewer_in<'a>(frame: &'a Value, id: &str) -> Option<&'a Value> {
    frame["viewers"].as_array()?.iter().find(|v| v["id"] == id)
}

async fn update(app: &TestApp, vars: Value) -> Value {
    app.gql(None, UPDATE, vars).await
}

/// Ana's workspace with one project and a VIEW link to it.
async fn setup(app: &TestApp) -> (TestUser, String, String, String) {
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = crate::projects::create_project(app, &ana, "Roadmap").await;
    let (link, token) = crate::sharing::share(app, &ana, &project, "VIEW", None).await;
    (ana, project, link, token)
}

/// Rows of the tables a change could write to (presence must write none).
async fn written(app: &TestApp) -> Vec<i64> {
    use sea_orm::ConnectionTrait;
    let db = &app.app.svc.db.read;
    let mut out = Vec::new();
    for t in [
        "activity_events",
        "webhook_messages",
        "notifications",
        "link_visits",
        "rate_limits",
        "projects",
    ] {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {t}"),
            ))
            .await
            .unwrap()
            .unwrap();
        out.push(row.try_get::<i64>("", "n").unwrap());
    }
    out
}

/// Every string anywhere in `v`.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out)
        }),
        _ => {}
    }
}

#[tokio::test]
async fn members_and_guests_see_each_other_and_guests_see_names_only() {
    let app = spawn().await;
    let (ana, project, _, token) = setup(&app).await;
    let (mut a, first) = member(&app, &ana, &project).await;
    assert_eq!(first["viewerCount"], 1);
    assert_eq!(viewer_in(&first, &a.id).unwrap()["name"], "Ana");
    assert_eq!(viewer_in(&first, &a.id).unwrap()["kind"], "MEMBER");

    let (g, seen_by_guest) = guest(&app, &token, "  Zed  ").await;
    assert_eq!(seen_by_guest["viewerCount"], 2, "{seen_by_guest}");
    let ana_there = viewer_in(&seen_by_guest, &a.id).expect("the guest sees Ana");
    assert_eq!(ana_there["name"], "Ana");
    assert_eq!(ana_there["kind"], "MEMBER");
    assert_eq!(viewer_in(&seen_by_guest, &g.id).unwrap()["name"], "Zed");

    let f = frame_where(&mut a, |f| viewer_in(f, &g.id).is_some()).await;
    let zed = viewer_in(&f, &g.id).unwrap();
    assert_eq!(
        (zed["name"].as_str(), zed["kind"].as_str()),
        (Some("Zed"), Some("GUEST"))
    );
    assert_eq!(f["viewerCount"], 2);

    // Nothing the guest received names a user, an address or an organization.
    let mut all = Vec::new();
    strings(&seen_by_guest, &mut all);
    for s in &all {
        assert!(
            s != &ana.id
                && s != &ana.org_id
                && !s.contains('@')
                && !s.starts_with("usr_")
                && !s.starts_with("org_"),
            "a guest received {s:?}: {seen_by_guest}"
        );
    }
    // A guest without a name is "Guest".
    let (_, nameless) = open(&app, None, json!({ "t": token })).await.unwrap();
    let me = nameless["viewerId"].as_str().unwrap();
    assert_eq!(viewer_in(&nameless, me).unwrap()["name"], "Guest");
}

#[tokio::test]
async fn an_update_reaches_the_other_viewers() {
    let app = spawn().await;
    let (ana, project, _, token) = setup(&app).await;
    let before = written(&app).await;
    let (mut a, _) = member(&app, &ana, &project).await;
    let (mut g, _) = guest(&app, &token, "Zed").await;

    let body = update(
        &app,
        json!({ "p": project, "k": a.key, "c": { "x": 10.5, "y": -3 }, "st": "typing" }),
    )
    .await;
    assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
    let f = frame_where(&mut g, |f| {
        viewer_in(f, &a.id).is_some_and(|v| v["cursor"].is_object())
    })
    .await;
    let seen = viewer_in(&f, &a.id).unwrap();
    assert_eq!(seen["cursor"], json!({ "x": 10.5, "y": -3.0 }));
    assert_eq!(seen["state"], "typing");
    assert_eq!(f["full"], false);

    // The guest selects through its token; a selection clears its cursor.
    let body = update(
        &app,
        json!({ "t": token, "k": g.key, "s": "#intro > p:nth(2)" }),
    )
    .await;
    assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
    let f = frame_where(&mut a, |f| {
        viewer_in(f, &g.id).is_some_and(|v| v["selection"].is_string())
    })
    .await;
    let seen = viewer_in(&f, &g.id).unwrap();
    assert_eq!(seen["selection"], "#intro > p:nth(2)");
    assert_eq!(seen["cursor"], Value::Null);
    // Ephemeral: joining and updating wrote nothing.
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn a_closed_socket_removes_its_viewer_at_once() {
    let app = spawn().await;
    let (ana, project, _, token) = setup(&app).await;
    let (mut a, _) = member(&app, &ana, &project).await;
    let (g, _) = guest(&app, &token, "Zed").await;
    frame_where(&mut a, |f| viewer_in(f, &g.id).is_some()).await;
    let gone = g.id.clone();
    let started = Instant::now();
    drop(g.ws);
    let f = frame_where(&mut a, |f| {
        f["left"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    assert_eq!(f["left"], json!([gone]));
    assert_eq!(f["viewerCount"], 1);
    // Well within the silence timeout: the close itself removes the viewer.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.app.svc.bus.presence().counts(), (1, 1));
    drop(a);
}

#[tokio::test]
async fn a_silent_viewer_is_gone_after_the_timeout() {
    let app = spawn_with(|c| c.realtime.presence_timeout = Duration::from_millis(4000)).await;
    let (ana, project, _, token) = setup(&app).await;
    let (mut a, _) = member(&app, &ana, &project).await;
    let (mut g, _) = guest(&app, &token, "Zed").await;
    frame_where(&mut a, |f| viewer_in(f, &g.id).is_some()).await;

    // Ana keeps sending heartbeats (an update without fields); the guest sends nothing.
    app.clock.advance(chrono::Duration::milliseconds(3000));
    let body = update(&app, json!({ "p": project, "k": a.key })).await;
    assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
    app.clock.advance(chrono::Duration::milliseconds(1500));
    let f = frame_where(&mut a, |f| {
        f["left"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    assert_eq!(f["left"], json!([g.id]));
    assert_eq!(f["viewerCount"], 1);
    // The silent guest's own stream ends (after what it was sent before), and its key moves
    // nothing any more.
    let ended = loop {
        if let Err(code) = next_result(&mut g.ws).await {
            break code;
        }
    };
    assert_eq!(ended, "NOT_FOUND");
    let body = update(&app, json!({ "t": token, "k": g.key })).await;
    let errs = &body["data"]["updatePresence"]["userErrors"];
    assert_eq!(errs[0]["code"], "NOT_FOUND", "{body}");
    assert_eq!(errs[0]["field"], json!(["viewerKey"]));
}

#[tokio::test]
async fn outsiders_revoked_links_and_bad_arguments_are_refused() {
    let app = spawn().await;
    let (ana, project, link, token) = setup(&app).await;
    let bob = app.sign_up("Bob", "bob@example.com").await;
    // Another organization's member, and nobody signed in, by project id.
    assert_eq!(
        open(&app, Some(&bob.token), json!({ "p": project }))
            .await
            .err()
            .as_deref(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        open(&app, None, json!({ "p": project }))
            .await
            .err()
            .as_deref(),
        Some("UNAUTHENTICATED")
    );
    // Exactly one of projectId and token.
    assert_eq!(
        open(&app, Some(&ana.token), json!({ "p": project, "t": token }))
            .await
            .err()
            .as_deref(),
        Some("INVALID_INPUT")
    );
    assert_eq!(
        open(&app, Some(&ana.token), json!({}))
            .await
            .err()
            .as_deref(),
        Some("INVALID_INPUT")
    );
    assert_eq!(
        open(&app, None, json!({ "t": token, "n": "x".repeat(61) }))
            .await
            .err()
            .as_deref(),
        Some("INVALID_INPUT")
    );

    let (mut a, _) = member(&app, &ana, &project).await;
    let (mut g, _) = guest(&app, &token, "Zed").await;
    frame_where(&mut a, |f| viewer_in(f, &g.id).is_some()).await;
    let revoke = "mutation($l: ID!) { revokeSharedLink(id: $l) { userErrors { code } } }";
    let body = app
        .gql(Some(&ana.token), revoke, json!({ "l": link }))
        .await;
    assert_eq!(
        body["data"]["revokeSharedLink"]["userErrors"],
        json!([]),
        "{body}"
    );
    // The guest's stream ends, it leaves Ana's view, and the link lets nobody in again.
    assert_eq!(next_result(&mut g.ws).await.unwrap_err(), "LINK_REVOKED");
    let f = frame_where(&mut a, |f| {
        f["left"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    assert_eq!(f["left"], json!([g.id]));
    assert_eq!(
        open(&app, None, json!({ "t": token }))
            .await
            .err()
            .as_deref(),
        Some("LINK_REVOKED")
    );
}

#[tokio::test]
async fn a_viewer_key_moves_only_its_own_entry_and_inputs_are_bounded() {
    let app = spawn().await;
    let (ana, project, _, token) = setup(&app).await;
    let (a, _) = member(&app, &ana, &project).await;
    let (g, _) = guest(&app, &token, "Zed").await;
    let field_of = |body: &Value| {
        let p = &body["data"]["updatePresence"];
        assert_eq!(p["ok"], false, "{body}");
        assert_eq!(p["userErrors"][0]["code"], "INVALID_INPUT", "{body}");
        p["userErrors"][0]["field"].clone()
    };
    // The guest knows Ana's public id, not her key; nor does its own key work as a member's.
    for k in [a.id.as_str(), "garbage", &g.key] {
        let body = update(
            &app,
            json!({ "p": project, "k": k, "c": { "x": 1, "y": 1 } }),
        )
        .await;
        assert_eq!(field_of(&body), json!(["viewerKey"]), "{k}");
    }
    // Ana's key through the guest's link is not hers either.
    let body = update(&app, json!({ "t": token, "k": a.key })).await;
    assert_eq!(field_of(&body), json!(["viewerKey"]));
    let body = update(&app, json!({ "k": a.key })).await;
    assert_eq!(field_of(&body), json!(["projectId"]));
    let cases = [
        (
            json!({ "c": { "x": 1e12, "y": 0 } }),
            json!(["cursor", "x"]),
        ),
        (json!({ "s": "x".repeat(1025) }), json!(["selection"])),
        (json!({ "st": "y".repeat(257) }), json!(["state"])),
        (json!({ "st": "bell\u{7}" }), json!(["state"])),
        (
            json!({ "c": { "x": 1, "y": 1 }, "s": "both" }),
            json!(["selection"]),
        ),
    ];
    for (extra, field) in cases {
        let mut vars = json!({ "p": project, "k": a.key });
        vars.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(field_of(&update(&app, vars).await), field);
    }
}

#[tokio::test]
async fn updates_are_rate_limited_per_viewer() {
    let app = spawn_with(|c| {
        c.safety.presence_updates_per_viewer =
            Some(kfactor::config::Rate::new(5, Duration::from_secs(60)))
    })
    .await;
    let (ana, project, _, token) = setup(&app).await;
    let (a, _) = member(&app, &ana, &project).await;
    let (g, _) = guest(&app, &token, "Zed").await;
    for i in 0..5 {
        let body = update(
            &app,
            json!({ "p": project, "k": a.key, "c": { "x": i, "y": 0 } }),
        )
        .await;
        assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
    }
    let (status, body) = app
        .post(
            None,
            UPDATE,
            json!({ "p": project, "k": a.key, "c": { "x": 9, "y": 0 } }),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error_codes(&body), vec!["RATE_LIMITED"], "{body}");
    // Another viewer has a budget of its own.
    let body = update(&app, json!({ "t": token, "k": g.key, "st": "here" })).await;
    assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
}

#[tokio::test]
async fn quick_updates_arrive_coalesced_with_the_last_value() {
    let app = spawn().await;
    let (ana, project, _, token) = setup(&app).await;
    let (a, _) = member(&app, &ana, &project).await;
    let (mut g, _) = guest(&app, &token, "Zed").await;
    let n = 25;
    // Sent while the guest reads, so the frames' arrival times are the server's pacing.
    let (http, url, key) = (
        app.http.clone(),
        format!("{}/graphql", app.url),
        a.key.clone(),
    );
    let p = project.clone();
    let sender = tokio::spawn(async move {
        for i in 1..=n {
            let body: Value = http
                .post(&url)
                .json(&json!({ "query": UPDATE, "variables": { "p": p, "k": key, "c": { "x": i, "y": 0 } } }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
        }
    });
    let mut frames = Vec::new();
    loop {
        let f = next_result(&mut g.ws).await.expect("a frame");
        let Some(x) = viewer_in(&f, &a.id).and_then(|v| v["cursor"]["x"].as_f64()) else {
            continue;
        };
        frames.push((Instant::now(), x));
        if x == n as f64 {
            break;
        }
    }
    sender.await.unwrap();
    assert!(frames.len() < n, "{} frames for {n} updates", frames.len());
    // Values only go forward, and frames are at least a frame interval apart (less jitter).
    for w in frames.windows(2) {
        assert!(w[0].1 < w[1].1, "{frames:?}");
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(30), "{frames:?}");
    }
}

#[tokio::test]
async fn a_full_project_refuses_one_more_viewer() {
    let app = spawn_with(|c| c.realtime.presence_max_viewers = 2).await;
    let (ana, project, _, token) = setup(&app).await;
    let _a = member(&app, &ana, &project).await;
    let _g = guest(&app, &token, "Zed").await;
    assert_eq!(
        open(&app, None, json!({ "t": token }))
            .await
            .err()
            .as_deref(),
        Some("LIMIT_REACHED")
    );
}

/// Scaled out on PostgreSQL: viewers on two instances see each other, updates posted to
/// either instance reach both, and a departure on one reaches the other.
#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn viewers_on_two_instances_see_each_other() {
    crate::helpers::require_postgres();
    let a = spawn().await;
    let b = spawn_on(&a.db_url, |_| {}).await;
    let (ana, project, _, token) = setup(&a).await;
    let (mut on_a, _) = member(&a, &ana, &project).await;
    let (mut on_b, _) = guest(&b, &token, "Zed").await;
    // B's new room asked the others: Ana (held by A) reaches the guest on B.
    frame_where(&mut on_b, |f| {
        viewer_in(f, &on_a.id).is_some_and(|v| v["name"] == "Ana")
    })
    .await;
    frame_where(&mut on_a, |f| {
        viewer_in(f, &on_b.id).is_some_and(|v| v["kind"] == "GUEST")
    })
    .await;

    // Ana's update through A reaches B; the guest's through A (a load balancer's choice)
    // reaches A's viewer too.
    let body = update(
        &a,
        json!({ "p": project, "k": on_a.key, "c": { "x": 7, "y": 8 } }),
    )
    .await;
    assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
    frame_where(&mut on_b, |f| {
        viewer_in(f, &on_a.id).is_some_and(|v| v["cursor"] == json!({ "x": 7.0, "y": 8.0 }))
    })
    .await;
    let body = update(&a, json!({ "t": token, "k": on_b.key, "st": "reading" })).await;
    assert_eq!(body["data"]["updatePresence"]["ok"], true, "{body}");
    frame_where(&mut on_a, |f| {
        viewer_in(f, &on_b.id).is_some_and(|v| v["state"] == "reading")
    })
    .await;
    let guest_id = on_b.id.clone();
    frame_where(&mut on_b, |f| {
        viewer_in(f, &guest_id).is_some_and(|v| v["state"] == "reading")
    })
    .await;

    // The guest closes its socket on B: A's viewer sees it leave.
    let gone = on_b.id.clone();
    drop(on_b.ws);
    let f = frame_where(&mut on_a, |f| {
        f["left"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    assert_eq!(f["left"], json!([gone]));
    assert_eq!(f["viewerCount"], 1);
}
