//! A graphql-transport-ws test client over a real WebSocket (tokio-tungstenite).
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use super::TestApp;

/// A client socket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open socket offering `protocol` (none: no `Sec-WebSocket-Protocol`), before
/// `connection_init`.
pub async fn open_with(app: &TestApp, protocol: Option<&str>) -> Ws {
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("sec-websocket-protocol", p.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// An open graphql-transport-ws socket, before `connection_init`.
pub async fn open(app: &TestApp) -> Ws {
    open_with(app, Some("graphql-transport-ws")).await
}

/// An acknowledged socket, authenticated with `token` when given.
pub async fn connect(app: &TestApp, token: Option<&str>) -> Ws {
    let mut ws = open(app).await;
    let payload = match token {
        Some(t) => json!({ "authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

/// Sends one JSON message.
pub async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

/// The next protocol message (server pings are answered and skipped), within 10 s.
pub async fn next_json(ws: &mut Ws) -> Value {
    serde_json::from_str(&next_text(ws).await).unwrap()
}

/// The next protocol message as the server wrote it (server pings are answered and
/// skipped), within 10 s: for what parsing would lose, like the order of keys.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("ws message");
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ping" {
                    send(ws, json!({ "type": "pong" })).await;
                    continue;
                }
                return t.to_string();
            }
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// The close frame the server ends the socket with, within 10 s (text messages before it
/// are skipped): its code and reason.
pub async fn closed(ws: &mut Ws) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("a close frame within 10 s");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a close frame"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket failed before a close frame: {e}"),
        }
    }
}

/// Starts `query` as operation `id`.
pub async fn subscribe(ws: &mut Ws, id: &str, query: &str, variables: Value) {
    send(
        ws,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await;
}

/// The activity subscription of an organization.
pub const ACTIVITY: &str = "subscription($o: ID!) { activity(organizationId: $o) { type summary organizationId actor { displayName } } }";

/// Waits (up to 10 s) until the server runs `n` guarded live streams: a subscription is
/// live once its stream has registered, which happens after `subscribe` was sent.
pub async fn wait_live(app: &TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (live, _) = app.app.svc.bus.live_counts();
        if live == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{live} live streams after 10 s, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads until operation `id` completes; returns its results (`next` payloads) and
/// asserts that it completed rather than errored.
pub async fn results_until_complete(ws: &mut Ws, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let m = next_json(ws).await;
        if m["id"] != id {
            continue;
        }
        match m["type"].as_str() {
            Some("next") => out.push(m["payload"].clone()),
            Some("complete") => return out,
            _ => panic!("unexpected message for {id}: {m}"),
        }
    }
}
