//! `GET /graphql/ws`: GraphQL over WebSocket, graphql-transport-ws exactly as its
//! PROTOCOL.md says (close codes 4400, 4401, 4403, 4406, 4408, 4409, 4429), with the limits
//! a long-lived socket needs: a message size limit (1009), keep-alive pings, operations per
//! socket, sockets per instance, and the HTTP timeout for queries and mutations. The
//! schema's own depth, complexity and root-field limits apply to every operation, as over
//! HTTP. Authentication comes from the `connection_init` payload
//! `{"authorization": "Bearer <token>"}`.
//!
//! One task serves a socket: it reads client messages and forwards the results of every
//! running operation, so a socket costs one task plus its (small) buffers.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Instant,
};

use async_graphql::{
    parser::{parse_query, types::OperationType},
    Request, Response as GqlResponse, ServerError, Variables,
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket},
        Extension, State, WebSocketUpgrade,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures_util::{
    future::{AbortHandle, Abortable},
    stream::{self, BoxStream, SelectAll},
    StreamExt,
};

use self::protocol::{ClientMessage, Close, Operation};
use super::AppState;
use crate::{
    domain::ratelimit::Client,
    graphql::{
        error::{top, TopLevelCode},
        Auth,
    },
};

pub mod memory;
pub mod protocol;

/// Open sockets of this instance, against `ws_max_connections`, and how many opened or
/// closed since [`memory::give_back`] last looked.
#[derive(Clone, Debug, Default)]
pub struct Sockets(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    open: AtomicUsize,
    changed: AtomicUsize,
}

impl Sockets {
    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Acquire)
    }

    /// Sockets opened or closed since the last call.
    fn take_changed(&self) -> usize {
        self.0.changed.swap(0, Ordering::AcqRel)
    }

    fn claim(&self, max: usize) -> Option<SocketPermit> {
        let mut n = self.0.open.load(Ordering::Acquire);
        loop {
            if n >= max {
                return None;
            }
            match self
                .0
                .open
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.0.changed.fetch_add(1, Ordering::AcqRel);
                    return Some(SocketPermit(self.0.clone()));
                }
                Err(now) => n = now,
            }
        }
    }
}

struct SocketPermit(Arc<Counts>);

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.fetch_add(1, Ordering::AcqRel);
    }
}

/// `GET /graphql/ws`.
pub async fn handler(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let cfg = app.svc.config.realtime.clone();
    let Some(permit) = app.sockets.claim(cfg.ws_max_connections) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            "This server holds as many live connections as it may; try again shortly.",
        )
            .into_response();
    };
    let upgrade = upgrade.protocols([protocol::SUBPROTOCOL]);
    let offered = upgrade.selected_protocol().is_some();
    upgrade
        // Small initial buffers (they grow up to the message limit when needed): clients
        // send small messages (subscribe, ping), and thousands of sockets sit idle. The
        // read buffer is allocated up front: 4 KiB of it was a fifth of an idle subscriber.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(cfg.ws_max_message_bytes.max(1024 * 1024))
        .max_message_size(cfg.ws_max_message_bytes)
        .max_frame_size(cfg.ws_max_message_bytes)
        .on_upgrade(move |socket| async move {
            let mut conn = Connection::new(app, client, socket);
            let why = if offered {
                conn.run().await
            } else {
                Some(Close::SubprotocolNotAcceptable)
            };
            if let Some(why) = why {
                conn.close(why).await;
            }
            drop(permit);
        })
}

/// What an operation's stream yields: a result, or the end.
enum Event {
    Result(Box<GqlResponse>),
    Done,
}

/// A running operation: its generation (ids may be reused after completion) and whether it
/// has answered yet (a first answer that is a request error becomes an `error` message).
struct Running {
    generation: u64,
    answered: bool,
    abort: AbortHandle,
}

struct Connection {
    app: AppState,
    client: Client,
    socket: WebSocket,
    /// `Some` once `connection_init` was received; the caller once acknowledged.
    init: Option<Option<Auth>>,
    running: HashMap<String, Running>,
    results: SelectAll<BoxStream<'static, (String, u64, Event)>>,
    generation: u64,
    last_heard: Instant,
}

impl Connection {
    fn new(app: AppState, client: Client, socket: WebSocket) -> Connection {
        Connection {
            app,
            client,
            socket,
            init: None,
            running: HashMap::new(),
            results: SelectAll::new(),
            generation: 0,
            last_heard: Instant::now(),
        }
    }

    /// Serves the socket until it ends; `Some` is why the server closes it.
    async fn run(&mut self) -> Option<Close> {
        let cfg = self.app.svc.config.realtime.clone();
        let init_deadline = tokio::time::sleep(cfg.ws_init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(cfg.ws_keepalive);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.tick().await;
        loop {
            tokio::select! {
                msg = self.socket.recv() => {
                    self.last_heard = Instant::now();
                    let text = match msg {
                        None => return None,
                        Some(Err(e)) => return too_big(e, cfg.ws_max_message_bytes),
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Binary(_))) => {
                            return Some(Close::BadRequest("Invalid message received: binary messages are not part of the protocol".into()))
                        }
                        Some(Ok(Message::Close(_))) => return None,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    };
                    let parsed = match protocol::parse(text.as_str()) {
                        Ok(m) => m,
                        Err(why) => return Some(Close::BadRequest(why)),
                    };
                    if let Err(why) = self.handle(parsed).await {
                        return Some(why);
                    }
                }
                Some((id, generation, event)) = self.results.next(), if !self.results.is_empty() => {
                    if !self.forward(id, generation, event).await {
                        return None;
                    }
                }
                () = &mut init_deadline, if self.init.is_none() => return Some(Close::InitTimeout),
                _ = keepalive.tick(), if matches!(self.init, Some(Some(_))) => {
                    if self.last_heard.elapsed() > cfg.ws_keepalive * 2 {
                        return Some(Close::NoPong);
                    }
                    if !self.send(protocol::ping_or_pong("ping")).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, msg: ClientMessage) -> Result<(), Close> {
        match msg {
            ClientMessage::Init(payload) => {
                if self.init.is_some() {
                    return Err(Close::TooManyInits);
                }
                self.init = Some(None);
                let header = ["authorization", "Authorization"]
                    .iter()
                    .find_map(|k| payload.get(*k).and_then(|v| v.as_str()));
                // Boxed: the session lookup's future is large and runs once, while this
                // task's future lives as long as the socket.
                let auth = Box::pin(Auth::from_header(&self.app.svc, header)).await;
                match auth {
                    Auth::Invalid(why) => return Err(Close::Forbidden(why)),
                    Auth::Unavailable => return Err(Close::Internal),
                    _ => {}
                }
                self.init = Some(Some(auth));
                self.send(protocol::ack()).await;
            }
            ClientMessage::Ping => {
                self.send(protocol::ping_or_pong("pong")).await;
            }
            ClientMessage::Pong => {}
            ClientMessage::Subscribe { id, payload } => {
                let Some(Some(auth)) = &self.init else {
                    return Err(Close::Unauthorized);
                };
                if self.running.contains_key(&id) {
                    return Err(Close::DuplicateId(id));
                }
                let max = self.app.svc.config.realtime.ws_max_operations;
                if self.running.len() >= max {
                    let refused = top(
                        TopLevelCode::TooManyOperations,
                        format!("A connection may run at most {max} operations at once; complete one first."),
                    )
                    .into_server_error(Default::default());
                    self.send(protocol::error(&id, &[refused])).await;
                    return Ok(());
                }
                let auth = auth.clone();
                self.start(id, *payload, auth);
            }
            ClientMessage::Complete(id) => {
                // Completing an unknown (or finished) id is allowed and does nothing.
                if let Some(op) = self.running.remove(&id) {
                    op.abort.abort();
                }
            }
        }
        Ok(())
    }

    /// Starts an operation; its results arrive through `self.results`.
    fn start(&mut self, id: String, op: Operation, auth: Auth) {
        let is_subscription = parse_query(&op.query).is_ok_and(|doc| {
            doc.operations.iter().any(|(name, o)| {
                o.node.ty == OperationType::Subscription
                    && (op.operation_name.is_none()
                        || name.map(|n| n.as_str()) == op.operation_name.as_deref())
            })
        });
        let mut request = Request::new(op.query).data(auth).data(self.client.clone());
        if let Some(name) = op.operation_name {
            request = request.operation_name(name);
        }
        if let Some(vars) = op.variables {
            request = request.variables(Variables::from_json(serde_json::Value::Object(vars)));
        }
        let schema = self.app.schema.clone();
        let results: BoxStream<'static, GqlResponse> = if is_subscription {
            schema.execute_stream(request).boxed()
        } else {
            // Queries and mutations get the same deadline as over HTTP.
            let timeout = self.app.svc.config.realtime.ws_operation_timeout;
            stream::once(async move {
                match tokio::time::timeout(timeout, schema.execute(request)).await {
                    Ok(r) => r,
                    Err(_) => GqlResponse::from_errors(vec![ServerError::new(
                        "The operation took too long and was stopped.",
                        None,
                    )]),
                }
            })
            .boxed()
        };
        self.generation += 1;
        let generation = self.generation;
        let (abort, registration) = AbortHandle::new_pair();
        let (key, done) = (id.clone(), id.clone());
        let tagged = Abortable::new(results, registration)
            .map(move |r| (key.clone(), generation, Event::Result(Box::new(r))))
            .chain(stream::once(async move { (done, generation, Event::Done) }));
        self.results.push(tagged.boxed());
        self.running.insert(
            id,
            Running {
                generation,
                answered: false,
                abort,
            },
        );
    }

    /// Sends what an operation produced; `false` when the socket is gone.
    async fn forward(&mut self, id: String, generation: u64, event: Event) -> bool {
        let Some(op) = self
            .running
            .get_mut(&id)
            .filter(|op| op.generation == generation)
        else {
            // Completed by the client (or superseded): nothing more is sent for it.
            return true;
        };
        match event {
            Event::Result(r) => {
                let first = !op.answered;
                op.answered = true;
                if first && is_request_error(&r) {
                    if let Some(op) = self.running.remove(&id) {
                        op.abort.abort();
                    }
                    return self.send(protocol::error(&id, &r.errors)).await;
                }
                self.send(protocol::next(&id, &r)).await
            }
            Event::Done => {
                self.running.remove(&id);
                self.send(protocol::complete(&id)).await
            }
        }
    }

    /// Sends one message; `false` when the socket is gone, or when the peer has not taken
    /// it within two keep-alive intervals (a client that stopped reading would otherwise
    /// hold its socket, and its streams, forever).
    async fn send(&mut self, text: String) -> bool {
        let patience = self.app.svc.config.realtime.ws_keepalive * 2;
        matches!(
            tokio::time::timeout(patience, self.socket.send(Message::text(text))).await,
            Ok(Ok(()))
        )
    }

    async fn close(&mut self, why: Close) {
        let frame = CloseFrame {
            code: why.code(),
            reason: why.reason().into(),
        };
        let patience = self.app.svc.config.realtime.ws_keepalive;
        let _ = tokio::time::timeout(patience, self.socket.send(Message::Close(Some(frame)))).await;
    }
}

/// A failed read: over the size limit is 1009; anything else ends the socket silently
/// (the peer broke the WebSocket framing or went away).
fn too_big(e: axum::Error, max: usize) -> Option<Close> {
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) if matches!(*e, tungstenite::Error::Capacity(_)) => Some(Close::TooBig(max)),
        Ok(e) => {
            tracing::debug!(error = %e, "websocket read failed");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "websocket read failed");
            None
        }
    }
}

/// A result that stopped before execution (parse or validation failed, a limit refused it):
/// no data and no error with a path.
fn is_request_error(r: &GqlResponse) -> bool {
    r.data == async_graphql::Value::Null
        && !r.errors.is_empty()
        && r.errors.iter().all(|e| e.path.is_empty())
}
