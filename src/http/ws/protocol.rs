//! The messages and close codes of graphql-transport-ws (PROTOCOL.md of the `graphql-ws`
//! library), parsed as strictly as the reference server parses them: anything else is a
//! 4400 close.
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The subprotocol name clients offer in `Sec-WebSocket-Protocol`.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// Why the server closes a socket: each has the protocol's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// 4400: a message of an unknown type or shape.
    BadRequest(String),
    /// 4401: `subscribe` before the connection was acknowledged.
    Unauthorized,
    /// 4403: `connection_init` refused (a bad or expired token).
    Forbidden(&'static str),
    /// 4406: the client did not offer `graphql-transport-ws`.
    SubprotocolNotAcceptable,
    /// 4408: no `connection_init` within the init timeout.
    InitTimeout,
    /// 4409: `subscribe` with the id of an operation still running.
    DuplicateId(String),
    /// 4429: a second `connection_init`.
    TooManyInits,
    /// 1009 (RFC 6455): a message over the size limit.
    TooBig(usize),
    /// 1001: the peer answered no ping for two keep-alive intervals.
    NoPong,
    /// 4500: the session could not be checked (try again).
    Internal,
}

impl Close {
    /// The close code.
    pub fn code(&self) -> u16 {
        match self {
            Close::BadRequest(_) => 4400,
            Close::Unauthorized => 4401,
            Close::Forbidden(_) => 4403,
            Close::SubprotocolNotAcceptable => 4406,
            Close::InitTimeout => 4408,
            Close::DuplicateId(_) => 4409,
            Close::TooManyInits => 4429,
            Close::TooBig(_) => 1009,
            Close::NoPong => 1001,
            Close::Internal => 4500,
        }
    }

    /// The close reason, at most 123 bytes as RFC 6455 allows.
    pub fn reason(&self) -> String {
        let r = match self {
            Close::BadRequest(why) => why.clone(),
            Close::Unauthorized => "Unauthorized".into(),
            Close::Forbidden(why) => format!("Forbidden: {why}"),
            Close::SubprotocolNotAcceptable => "Subprotocol not acceptable".into(),
            Close::InitTimeout => "Connection initialisation timeout".into(),
            Close::DuplicateId(id) => format!("Subscriber for {id} already exists"),
            Close::TooManyInits => "Too many initialisation requests".into(),
            Close::TooBig(max) => format!("Message too big: at most {max} bytes"),
            Close::NoPong => "No answer to pings".into(),
            Close::Internal => "Your session could not be checked. Try again.".into(),
        };
        truncate(r, 123)
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// What a client may send.
#[derive(Debug)]
pub enum ClientMessage {
    /// `connection_init` with its payload (an object, possibly empty).
    Init(Map<String, Value>),
    /// `ping`.
    Ping,
    /// `pong`.
    Pong,
    /// `subscribe`: start an operation under `id`.
    Subscribe {
        /// The client's operation id.
        id: String,
        /// The operation.
        payload: Box<Operation>,
    },
    /// `complete`: stop the operation `id`.
    Complete(String),
}

/// The payload of `subscribe`.
#[derive(Debug, Deserialize)]
pub struct Operation {
    /// The document.
    pub query: String,
    /// Its variables (an object, or absent/null).
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    /// Which operation of the document.
    #[serde(default, rename = "operationName")]
    pub operation_name: Option<String>,
    /// Protocol extensions (accepted, unused).
    #[serde(default)]
    pub extensions: Option<Map<String, Value>>,
}

/// Parses one text message; `Err` is the 4400 reason.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("Invalid message received: {e}"))?;
    let Value::Object(mut m) = value else {
        return Err("Invalid message received: not an object".into());
    };
    let kind = match m.remove("type") {
        Some(Value::String(t)) => t,
        _ => return Err("Invalid message received: missing a string `type`".into()),
    };
    let payload = m.remove("payload");
    let optional_object = |p: Option<Value>| match p {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(format!(
            "Invalid message received: the `{kind}` payload must be an object"
        )),
    };
    let id = |m: &mut Map<String, Value>| match m.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(format!(
            "Invalid message received: `{kind}` needs a non-empty string `id`"
        )),
    };
    match kind.as_str() {
        "connection_init" => Ok(ClientMessage::Init(optional_object(payload)?)),
        "ping" => optional_object(payload).map(|_| ClientMessage::Ping),
        "pong" => optional_object(payload).map(|_| ClientMessage::Pong),
        "subscribe" => {
            let id = id(&mut m)?;
            let payload = payload.ok_or_else(|| {
                "Invalid message received: `subscribe` needs a payload".to_string()
            })?;
            let payload: Operation = serde_json::from_value(payload)
                .map_err(|e| format!("Invalid message received: bad `subscribe` payload: {e}"))?;
            Ok(ClientMessage::Subscribe {
                id,
                payload: Box::new(payload),
            })
        }
        "complete" => Ok(ClientMessage::Complete(id(&mut m)?)),
        other => Err(truncate(
            format!("Invalid message received: unexpected message of type {other:?}"),
            123,
        )),
    }
}

/// `connection_ack`.
pub fn ack() -> String {
    json!({ "type": "connection_ack" }).to_string()
}

/// `ping` (keep-alive) or `pong` (the answer to the client's ping).
pub fn ping_or_pong(kind: &'static str) -> String {
    json!({ "type": kind }).to_string()
}

/// A message with a payload, serialized straight from the payload: going through
/// `serde_json::Value` would sort the result's keys alphabetically, and a GraphQL response
/// keeps the order of the selection set (spec, "Serialized Map Ordering").
#[derive(Serialize)]
struct WithPayload<'a, P: Serialize> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    payload: P,
}

fn with_payload(id: &str, kind: &'static str, payload: impl Serialize) -> String {
    serde_json::to_string(&WithPayload { id, kind, payload })
        .expect("a GraphQL response serializes to JSON")
}

/// `next` with an execution result.
pub fn next(id: &str, result: &async_graphql::Response) -> String {
    with_payload(id, "next", result)
}

/// `error`: the operation could not start (or was refused); no `complete` follows.
pub fn error(id: &str, errors: &[async_graphql::ServerError]) -> String {
    with_payload(id, "error", errors)
}

/// `complete`: the operation finished.
pub fn complete(id: &str) -> String {
    json!({ "id": id, "type": "complete" }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        assert!(matches!(
            parse(r#"{"type":"connection_init"}"#),
            Ok(ClientMessage::Init(_))
        ));
        assert!(parse(r#"{"type":"connection_init","payload":5}"#).is_err());
        assert!(parse(r#"{"type":"subscribe","id":"","payload":{"query":"{a}"}}"#).is_err());
        assert!(parse(r#"{"type":"subscribe","id":"1"}"#).is_err());
        assert!(parse(r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#).is_err());
        assert!(matches!(
            parse(r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":null}}"#),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(parse(r#"{"type":"next","id":"1","payload":{}}"#).is_err());
        assert!(parse(r#"{"type":"complete"}"#).is_err());
        assert!(parse("[]").is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        let long = Close::DuplicateId("é".repeat(200));
        assert!(long.reason().len() <= 123);
        assert_eq!(Close::TooManyInits.code(), 4429);
        assert_eq!(Close::TooBig(10).code(), 1009);
    }
}
