//! Live activity over graphql-transport-ws.
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::helpers::{spawn, TestApp};

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open graphql-transport-ws socket, before `connection_init`.
async fn open_socket(app: &TestApp) -> Ws {
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

pub async fn connect(app: &TestApp, token: Option<&str>) -> Ws {
    let mut ws = open_socket(app).await;
    let payload = match token {
        Some(t) => json!({ "authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": payload }).to_string(),
    ))
    .await
    .unwrap();
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("ws message");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

async fn subscribe(ws: &mut Ws, org: &str) {
    let msg = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($o: ID!) { activity(organizationId: $o) { type summary organizationId actor { displayName } } }",
        "variables": { "o": org } } });
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

#[tokio::test]
async fn members_receive_committed_activity_live() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mo = app.sign_up("Mo", "mo@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, &ana.org_id).await;

    // The subscription starts asynchronously: repeat the change until it is seen.
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(organizationId: $o, userId: $u) { userErrors { code } } }";
    let event = loop {
        app.add_member(&ana.org_id, &mo.id, "member").await;
        let body = app
            .gql(
                Some(&ana.token),
                remove,
                json!({ "o": ana.org_id, "u": mo.id }),
            )
            .await;
        assert_eq!(body["data"]["removeMember"]["userErrors"], json!([]));
        match tokio::time::timeout(Duration::from_millis(300), next_json(&mut ws)).await {
            Ok(v) => break v,
            Err(_) => continue,
        }
    };
    assert_eq!(event["type"], "next", "{event}");
    let e = &event["payload"]["data"]["activity"];
    assert_eq!(e["type"], "MEMBER_REMOVED");
    assert_eq!(e["organizationId"], ana.org_id.as_str());
    assert_eq!(e["summary"], "Ana removed Mo from Ana's workspace");
}

/// Visits are committed by the visits worker, through the same commit hook as every other
/// write: a new visitor reaches live subscribers only after their visit committed.
#[tokio::test]
async fn a_new_visitor_of_a_shared_link_shows_up_live() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = crate::projects::create_project(&app, &ana, "Roadmap").await;
    let (link_id, token) = crate::sharing::share(&app, &ana, &project, "VIEW", None).await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, &ana.org_id).await;

    let open =
        "query($t: String!, $v: String) { sharedLink(token: $t, visitorId: $v) { permission } }";
    // The subscription starts asynchronously: new visitors come until one is seen.
    let mut visitor = 0;
    let event = loop {
        visitor += 1;
        assert!(
            visitor <= 20,
            "no SHARED_LINK_VISITED event after 20 new visitors"
        );
        let v = format!("guest-{visitor:02}");
        let body = app.gql(None, open, json!({ "t": token, "v": v })).await;
        assert_eq!(body["data"]["sharedLink"]["permission"], "VIEW", "{body}");
        match tokio::time::timeout(Duration::from_millis(300), next_json(&mut ws)).await {
            Ok(v) => break v,
            Err(_) => continue,
        }
    };
    assert_eq!(event["type"], "next", "{event}");
    let e = &event["payload"]["data"]["activity"];
    assert_eq!(e["type"], "SHARED_LINK_VISITED", "{event}");
    assert_eq!(e["organizationId"], ana.org_id.as_str());
    assert_eq!(e["summary"], "Someone new opened a shared link");
    let feed = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity(first: 5) { nodes { type resourceType resourceId data } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let newest = &feed["data"]["organization"]["activity"]["nodes"][0];
    assert_eq!(newest["type"], "SHARED_LINK_VISITED", "{feed}");
    assert_eq!(newest["data"]["sharedLinkId"], link_id.as_str(), "{feed}");
    assert_eq!(newest["resourceType"], "PROJECT", "{feed}");
    assert_eq!(newest["resourceId"], project.as_str(), "{feed}");
}

#[tokio::test]
async fn subscriptions_need_membership() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;

    let mut ws = connect(&app, Some(&eve.token)).await;
    subscribe(&mut ws, &ana.org_id).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(msg["payload"]["data"], json!(null), "{msg}");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );

    let mut ws = connect(&app, None).await;
    subscribe(&mut ws, &ana.org_id).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{msg}"
    );
}

/// graphql-transport-ws: a refused `connection_init` (a bad or expired token) closes the
/// socket with 4403 Forbidden, so clients can tell "log in again" from a protocol error.
#[tokio::test]
async fn a_bad_token_closes_the_socket_with_4403() {
    let app = spawn().await;
    let mut ws = open_socket(&app).await;
    let init = json!({ "type": "connection_init", "payload": { "authorization": "Bearer not-a-session" } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer within 10 s")
        .expect("stream open")
        .expect("ws message");
    match msg {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
            assert!(!frame.reason.is_empty());
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Scaled out on PostgreSQL: a subscriber connected to one instance hears of changes
/// committed through another.
#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn subscribers_on_one_instance_hear_changes_made_through_another() {
    crate::helpers::require_postgres();
    let a = spawn().await;
    let b = crate::helpers::spawn_on(&a.db_url, |_| {}).await;
    let ana = a.sign_up("Ana", "ana@example.com").await;
    let project = crate::projects::create_project(&a, &ana, "Roadmap").await;
    let mut ws = connect(&b, Some(&ana.token)).await;
    subscribe(&mut ws, &ana.org_id).await;
    // The subscription starts asynchronously: repeat a change through instance A until the
    // subscriber on instance B hears of one. Events of the signup and the project may still
    // be on their way to B (cross-instance delivery is asynchronous) and come first.
    let comment =
        "mutation($p: ID!) { addComment(projectId: $p, body: \"From A\") { comment { id } } }";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = a
            .gql(Some(&ana.token), comment, json!({ "p": project }))
            .await;
        assert!(body["data"]["addComment"]["comment"].is_object(), "{body}");
        match tokio::time::timeout(Duration::from_millis(300), next_json(&mut ws)).await {
            Ok(event) => {
                assert_eq!(event["type"], "next", "{event}");
                let e = &event["payload"]["data"]["activity"];
                assert_eq!(e["organizationId"], ana.org_id.as_str());
                if e["type"] == "COMMENT_ADDED" {
                    return;
                }
                assert!(
                    e["type"] == "MEMBER_JOINED" || e["type"] == "PROJECT_CREATED",
                    "{event}"
                );
            }
            Err(_) => assert!(
                std::time::Instant::now() < deadline,
                "nothing committed through instance A reached instance B"
            ),
        }
    }
}
