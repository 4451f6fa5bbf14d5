//! Settings of live subscriptions over WebSocket (graphql-transport-ws): the protocol's
//! timers, what one socket may hold, and how far a subscriber may fall behind. Flattened
//! into the main configuration, so every key is a plain `KFACTOR_<KEY>`.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{err, ConfigError};

/// The validated real-time settings.
#[derive(Clone, Debug)]
pub struct Realtime {
    /// How long a socket may stay open without `connection_init` (then 4408).
    pub ws_init_timeout: Duration,
    /// How often the server pings an idle socket; a peer that sent nothing (not even the
    /// `pong`) for two intervals is closed.
    pub ws_keepalive: Duration,
    /// The largest message a client may send (bytes; larger closes with 1009).
    pub ws_max_message_bytes: usize,
    /// Operations one socket may run at once (beyond: an `error` for that id).
    pub ws_max_operations: usize,
    /// Open sockets this instance accepts (beyond: 503 before the upgrade).
    pub ws_max_connections: usize,
    /// Longest a query or mutation sent over the socket may run (like the HTTP timeout).
    pub ws_operation_timeout: Duration,
    /// Events a subscriber may fall behind its organization's feed before its stream ends
    /// with `LAGGED`.
    pub ws_subscriber_backlog: usize,
    /// A presence viewer silent (no join, no `updatePresence`) for this long is gone.
    pub presence_timeout: Duration,
    /// Viewers one project may have at once; one more is refused with `LIMIT_REACHED`.
    pub presence_max_viewers: usize,
}

/// The raw layers of [`Realtime`].
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RawRealtime {
    ws_init_timeout_ms: u64,
    ws_keepalive_ms: u64,
    ws_max_message_bytes: usize,
    ws_max_operations: usize,
    ws_max_connections: usize,
    ws_operation_timeout_ms: u64,
    ws_subscriber_backlog: usize,
    presence_timeout_ms: u64,
    presence_max_viewers: usize,
}

/// Events a live subscriber may fall behind its organization's feed before its stream
/// ends with LAGGED.
pub const DEFAULT_SUBSCRIBER_BACKLOG: usize = 1024;

impl Default for RawRealtime {
    fn default() -> Self {
        RawRealtime {
            ws_init_timeout_ms: 10_000,
            ws_keepalive_ms: 15_000,
            ws_max_message_bytes: 64 * 1024,
            ws_max_operations: 50,
            ws_max_connections: 20_000,
            ws_operation_timeout_ms: 30_000,
            ws_subscriber_backlog: DEFAULT_SUBSCRIBER_BACKLOG,
            presence_timeout_ms: 8_000,
            presence_max_viewers: 200,
        }
    }
}

impl RawRealtime {
    pub(super) fn validate(self) -> Result<Realtime, ConfigError> {
        let ms = |key: &str, v: u64, max: u64| {
            if (1..=max).contains(&v) {
                Ok(Duration::from_millis(v))
            } else {
                Err(err(
                    key,
                    format!("must be between 1 and {max} milliseconds"),
                ))
            }
        };
        let within = |key: &str, v: usize, min: usize, max: usize| {
            if (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(err(key, format!("must be between {min} and {max}")))
            }
        };
        Ok(Realtime {
            ws_init_timeout: ms("ws_init_timeout_ms", self.ws_init_timeout_ms, 600_000)?,
            ws_keepalive: ms("ws_keepalive_ms", self.ws_keepalive_ms, 3_600_000)?,
            ws_max_message_bytes: within(
                "ws_max_message_bytes",
                self.ws_max_message_bytes,
                1024,
                16 * 1024 * 1024,
            )?,
            ws_max_operations: within("ws_max_operations", self.ws_max_operations, 1, 10_000)?,
            ws_max_connections: within(
                "ws_max_connections",
                self.ws_max_connections,
                1,
                10_000_000,
            )?,
            ws_operation_timeout: ms(
                "ws_operation_timeout_ms",
                self.ws_operation_timeout_ms,
                600_000,
            )?,
            ws_subscriber_backlog: within(
                "ws_subscriber_backlog",
                self.ws_subscriber_backlog,
                1,
                1_000_000,
            )?,
            presence_timeout: ms("presence_timeout_ms", self.presence_timeout_ms, 600_000)?,
            presence_max_viewers: within(
                "presence_max_viewers",
                self.presence_max_viewers,
                1,
                100_000,
            )?,
        })
    }
}
