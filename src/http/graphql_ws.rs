//! GraphQL over WebSocket (graphql-transport-ws), authenticated by the `connection_init`
//! payload.
use std::sync::{
    atomic::{AtomicU16, Ordering},
    Arc,
};

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{
        ws::{CloseFrame, Message},
        Extension, State, WebSocketUpgrade,
    },
    response::Response,
};
use futures_util::{future, SinkExt, StreamExt};

use super::AppState;
use crate::{domain::ratelimit::Client, graphql::Auth};

/// `GET /graphql/ws`: graphql-transport-ws. Authentication comes from the `connection_init`
/// payload `{"authorization": "Bearer <token>"}`; a refused one closes the socket with 4403
/// Forbidden, as the protocol recommends (4500 if the session could not be checked).
pub async fn ws(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = app.schema.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            // async-graphql closes a refused connection_init with 1002 (protocol error);
            // the close frame is rewritten to the protocol's code for why it was refused:
            // 4403 Forbidden for a bad token, 4500 when it could not be checked.
            let refused = Arc::new(AtomicU16::new(0));
            let (sink, stream) = socket.split();
            let seen = refused.clone();
            let sink = sink.with(move |msg: Message| {
                let msg = match msg {
                    Message::Close(Some(frame))
                        if frame.code == 1002 && seen.load(Ordering::Acquire) != 0 =>
                    {
                        Message::Close(Some(CloseFrame {
                            code: seen.load(Ordering::Acquire),
                            reason: frame.reason,
                        }))
                    }
                    other => other,
                };
                future::ready(Ok::<_, axum::Error>(msg))
            });
            GraphQLWebSocket::new_with_pair(sink, stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let header = ["authorization", "Authorization"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .map(str::to_string);
                    let auth = Auth::from_header(&app.svc, header.as_deref()).await;
                    let (code, why) = match auth {
                        Auth::Invalid(why) => (4403, why),
                        Auth::Unavailable => {
                            (4500, "Your session could not be checked. Try again.")
                        }
                        _ => (0, ""),
                    };
                    if code != 0 {
                        refused.store(code, Ordering::Release);
                        return Err(async_graphql::Error::new(why));
                    }
                    let mut data = Data::default();
                    data.insert(auth);
                    data.insert(client);
                    Ok(data)
                })
                .serve()
        })
}
