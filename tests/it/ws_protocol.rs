//! graphql-transport-ws as PROTOCOL.md specifies it: close codes, timers and the limits of
//! one socket, against a real WebSocket client.
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    spawn, spawn_with,
    ws::{
        closed, connect, next_json, next_text, open, open_with, results_until_complete, send,
        subscribe, wait_live, ACTIVITY,
    },
};

#[tokio::test]
async fn subscribe_before_the_ack_closes_with_4401() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut ws = open(&app).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    assert_eq!(closed(&mut ws).await, (4401, "Unauthorized".into()));
}

#[tokio::test]
async fn malformed_messages_close_with_4400() {
    let app = spawn().await;
    let bad: [Message; 6] = [
        Message::text("not json"),
        Message::text(
            json!({ "type": "subscribe", "payload": { "query": "{ me { id } }" } }).to_string(),
        ),
        Message::text(json!({ "type": "next", "id": "1", "payload": {} }).to_string()),
        Message::text(json!({ "type": "connection_init", "payload": "token" }).to_string()),
        Message::text(json!({ "kind": "ping" }).to_string()),
        Message::binary(b"{\"type\":\"ping\"}".to_vec()),
    ];
    for msg in bad {
        let mut ws = open(&app).await;
        ws.send(msg.clone()).await.unwrap();
        let (code, reason) = closed(&mut ws).await;
        assert_eq!(code, 4400, "{msg:?}: {reason}");
        assert!(reason.starts_with("Invalid message received"), "{reason}");
    }
    // After the ack too, and for a malformed subscribe payload.
    let mut ws = connect(&app, None).await;
    send(
        &mut ws,
        json!({ "type": "subscribe", "id": "1", "payload": { "query": 5 } }),
    )
    .await;
    assert_eq!(closed(&mut ws).await.0, 4400);
}

#[tokio::test]
async fn a_second_connection_init_closes_with_4429() {
    let app = spawn().await;
    let mut ws = connect(&app, None).await;
    send(&mut ws, json!({ "type": "connection_init" })).await;
    assert_eq!(
        closed(&mut ws).await,
        (4429, "Too many initialisation requests".into())
    );
}

#[tokio::test]
async fn a_duplicate_operation_id_closes_with_4409_and_a_finished_id_may_be_reused() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    // A finished operation's id is free again.
    for _ in 0..2 {
        subscribe(&mut ws, "q", "{ me { name } }", json!({})).await;
        let results = results_until_complete(&mut ws, "q").await;
        assert_eq!(
            results,
            vec![json!({ "data": { "me": { "name": "Ana" } } })]
        );
    }
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    assert_eq!(
        closed(&mut ws).await,
        (4409, "Subscriber for 1 already exists".into())
    );
    // The server let go of the socket's streams.
    wait_live(&app, 0).await;
}

#[tokio::test]
async fn no_connection_init_within_the_timeout_closes_with_4408() {
    let app = spawn_with(|c| c.realtime.ws_init_timeout = Duration::from_millis(300)).await;
    let mut ws = open(&app).await;
    let started = Instant::now();
    assert_eq!(
        closed(&mut ws).await,
        (4408, "Connection initialisation timeout".into())
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A socket that did initialise is not affected.
    let mut ws = connect(&app, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn a_client_without_the_subprotocol_gets_4406() {
    let app = spawn().await;
    let mut ws = open_with(&app, None).await;
    assert_eq!(
        closed(&mut ws).await,
        (4406, "Subprotocol not acceptable".into())
    );
    // Offering only another protocol (the legacy `graphql-ws`) selects none, which a
    // conforming client refuses in the handshake already.
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let app = spawn_with(|c| c.realtime.ws_max_message_bytes = 4096).await;
    let mut ws = connect(&app, None).await;
    let big = format!("{{ me {{ name }} }} #{}", "x".repeat(5000));
    subscribe(&mut ws, "1", &big, json!({})).await;
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("4096"), "{reason}");
    // Just under the limit is fine.
    let mut ws = connect(&app, None).await;
    let fits = format!("{{ me {{ name }} }} #{}", "x".repeat(3900));
    subscribe(&mut ws, "1", &fits, json!({})).await;
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "next", "{m}");
}

#[tokio::test]
async fn the_server_pings_and_closes_a_peer_that_never_answers() {
    let app = spawn_with(|c| c.realtime.ws_keepalive = Duration::from_millis(200)).await;
    // A client that answers (next_json answers pings) stays connected past many intervals.
    let mut ws = connect(&app, None).await;
    let until = Instant::now() + Duration::from_millis(1200);
    let mut pings = 0;
    while Instant::now() < until {
        let msg = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .expect("a ping within 2 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["type"], "ping", "{v}");
            pings += 1;
            send(&mut ws, json!({ "type": "pong" })).await;
        }
    }
    assert!(pings >= 3, "{pings} pings in 1.2 s at a 200 ms interval");
    send(&mut ws, json!({ "type": "ping", "payload": {} })).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    // One that stays silent is closed after two intervals.
    let mut silent = connect(&app, None).await;
    let (code, _) = closed(&mut silent).await;
    assert_eq!(code, 1001);
}

#[tokio::test]
async fn one_socket_runs_a_bounded_number_of_operations_and_stays_open() {
    let app = spawn_with(|c| c.realtime.ws_max_operations = 2).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    subscribe(&mut ws, "2", ACTIVITY, json!({ "o": ana.org_id })).await;
    subscribe(&mut ws, "3", ACTIVITY, json!({ "o": ana.org_id })).await;
    let refused = next_json(&mut ws).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "3");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "TOO_MANY_OPERATIONS"
    );
    wait_live(&app, 2).await;
    // Completing one frees a slot on the same socket.
    send(&mut ws, json!({ "type": "complete", "id": "1" })).await;
    wait_live(&app, 1).await;
    subscribe(&mut ws, "4", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 2).await;
    let project = crate::projects::create_project(&app, &ana, "Roadmap").await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = next_json(&mut ws).await;
        assert_eq!(m["type"], "next", "{m}");
        assert_eq!(
            m["payload"]["data"]["activity"]["type"], "PROJECT_CREATED",
            "{m}"
        );
        seen.push(m["id"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["2", "4"], "project {project}");
}

#[tokio::test]
async fn queries_and_mutations_over_the_socket_meet_the_http_limits() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;

    // A mutation runs and answers once, then completes.
    let create = "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"Over WS\"}) { project { name } userErrors { code } } }";
    subscribe(&mut ws, "m", create, json!({ "o": ana.org_id })).await;
    let r = results_until_complete(&mut ws, "m").await;
    assert_eq!(r[0]["data"]["createProject"]["project"]["name"], "Over WS");

    // Too deep: refused before running, as an `error` message (no `complete` follows).
    let deep = format!(
        "{{ me {{ {} id {} }} }}",
        "memberships { organization { members { nodes { user { ".repeat(4),
        "} } } } }".repeat(4)
    );
    subscribe(&mut ws, "deep", &deep, json!({})).await;
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["id"], "deep");
    assert_eq!(
        m["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{m}"
    );

    // Expensive root fields cannot be multiplied by aliases over the socket either.
    let twice = r#"mutation { a: logIn(input: {email: "ana@example.com", password: "wrong password1"}) { token }
                              b: logIn(input: {email: "ana@example.com", password: "wrong password2"}) { token } }"#;
    subscribe(&mut ws, "alias", twice, json!({})).await;
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(
        m["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{m}"
    );

    // An invalid document is an `error` too.
    subscribe(&mut ws, "bad", "{ nope }", json!({})).await;
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["id"], "bad");

    // The socket is still usable.
    subscribe(&mut ws, "q", "{ me { name } }", json!({})).await;
    let r = results_until_complete(&mut ws, "q").await;
    assert_eq!(r[0]["data"]["me"]["name"], "Ana");
}

#[tokio::test]
async fn completing_an_operation_stops_its_stream() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    send(&mut ws, json!({ "type": "complete", "id": "1" })).await;
    wait_live(&app, 0).await;
    // Closing the socket lets go of its streams too.
    subscribe(&mut ws, "2", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    drop(ws);
    wait_live(&app, 0).await;
    assert_eq!(
        app.app.svc.bus.live_counts(),
        (0, 0),
        "no organization channel left"
    );
}

/// GraphQL's "Serialized Map Ordering": a result's keys come in the order of the selection
/// set, over the socket as over HTTP, for a query's one result and a subscription's events.
#[tokio::test]
async fn results_over_the_socket_keep_the_selection_order() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;

    subscribe(&mut ws, "q", "{ me { name email id } }", json!({})).await;
    let text = next_text(&mut ws).await;
    assert_in_order(&text, &[r#""id":"q""#, r#""type":"next""#, "\"payload\""]);
    assert_in_order(&text, &["\"name\"", "\"email\"", "\"id\":\"usr_"]);
    assert_eq!(next_json(&mut ws).await["type"], "complete");

    let feed = "subscription($o: ID!) { activity(organizationId: $o) { type summary actor { displayName } organizationId } }";
    subscribe(&mut ws, "s", feed, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    app.gql(
        Some(&ana.token),
        "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"Roadmap\"}) { project { id } } }",
        json!({ "o": ana.org_id }),
    )
    .await;
    let text = next_text(&mut ws).await;
    assert_in_order(
        &text,
        &[
            "\"type\":\"PROJECT_CREATED\"",
            "\"summary\"",
            "\"actor\"",
            "\"organizationId\"",
        ],
    );
}

/// Panics unless every needle occurs in `text`, each after the one before it.
fn assert_in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match text[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle} is not after {:?} in {text}", &text[..from]),
        }
    }
}
