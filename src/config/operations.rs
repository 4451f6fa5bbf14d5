//! Running it: how long operational rows are kept, how much memory the link cache may use,
//! and who may read `/metrics`.
use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{err, safety::Text, ConfigError, Secret};

/// What the retention task prunes, and when; the link cache; the metrics endpoint.
#[derive(Clone, Debug)]
pub struct Operations {
    /// How often each instance's retention task runs.
    pub retention_interval: Duration,
    /// Most rows one pruning statement deletes, so no statement holds locks for long.
    pub retention_batch_size: u64,
    /// Expired sessions are deleted this long after they expired (until then a client is
    /// told "your session has expired" rather than "not valid").
    pub session_retention: chrono::Duration,
    /// Idempotency keys are deleted this long after they were first used (at least the
    /// 24 hours a retry is answered with the first response).
    pub idempotency_retention: chrono::Duration,
    /// Most bytes the SQLite link cache holds; 0 turns it off.
    pub link_cache_bytes: usize,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// When set, `/metrics` is served on this address only (not on `bind`).
    pub metrics_bind: Option<SocketAddr>,
    /// Whether GraphQL answers over HTTP carry a `Server-Timing` header with the SQL
    /// statements the request ran and the time spent in them (profiling; off by default,
    /// since it tells any caller how much work a query costs).
    pub server_timing: bool,
}

/// The raw layers of [`Operations`], flattened into the main configuration.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RawOperations {
    retention_interval_seconds: u64,
    retention_batch_size: u64,
    session_retention_days: i64,
    idempotency_retention_hours: i64,
    link_cache_bytes: u64,
    metrics_token: Option<Text>,
    metrics_bind: Option<String>,
    server_timing: bool,
}

/// How long an idempotent response is replayed (the Idempotency-Key window); the
/// retention of stored responses may be longer, never shorter.
pub const IDEMPOTENCY_REPLAY_HOURS: i64 = 24;

impl Default for RawOperations {
    fn default() -> Self {
        RawOperations {
            retention_interval_seconds: 600,
            retention_batch_size: 500,
            session_retention_days: 7,
            idempotency_retention_hours: IDEMPOTENCY_REPLAY_HOURS,
            link_cache_bytes: 64 * 1024 * 1024,
            metrics_token: None,
            metrics_bind: None,
            server_timing: false,
        }
    }
}

impl RawOperations {
    pub(super) fn validate(self) -> Result<Operations, ConfigError> {
        if !(1..=86_400).contains(&self.retention_interval_seconds) {
            return Err(err(
                "retention_interval_seconds",
                "must be between 1 and 86400",
            ));
        }
        if !(1..=100_000).contains(&self.retention_batch_size) {
            return Err(err("retention_batch_size", "must be between 1 and 100000"));
        }
        if !(0..=3650).contains(&self.session_retention_days) {
            return Err(err("session_retention_days", "must be between 0 and 3650"));
        }
        let ttl = IDEMPOTENCY_REPLAY_HOURS;
        if !(ttl..=24 * 3650).contains(&self.idempotency_retention_hours) {
            return Err(err(
                "idempotency_retention_hours",
                format!("must be at least {ttl} (the replay window) and at most 87600"),
            ));
        }
        let link_cache_bytes = usize::try_from(self.link_cache_bytes)
            .map_err(|_| err("link_cache_bytes", "is too large for this machine"))?;
        let metrics_token = match self.metrics_token.map(|t| t.get().trim().to_string()) {
            None => None,
            Some(t) if t.is_empty() => None,
            Some(t) if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(err(
                    "metrics_token",
                    "must be at least 16 characters, without spaces",
                ))
            }
            Some(t) => Some(Secret(t.into_bytes())),
        };
        let metrics_bind = match self.metrics_bind.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => Some(a.parse().map_err(|_| {
                err(
                    "metrics_bind",
                    format!("{a:?} is not a socket address like 127.0.0.1:9090"),
                )
            })?),
        };
        Ok(Operations {
            retention_interval: Duration::from_secs(self.retention_interval_seconds),
            retention_batch_size: self.retention_batch_size,
            session_retention: chrono::Duration::days(self.session_retention_days),
            idempotency_retention: chrono::Duration::hours(self.idempotency_retention_hours),
            link_cache_bytes,
            metrics_token,
            metrics_bind,
            server_timing: self.server_timing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        let o = RawOperations::default().validate().unwrap();
        assert_eq!(o.retention_interval, Duration::from_secs(600));
        assert_eq!(o.session_retention, chrono::Duration::days(7));
        assert_eq!(o.idempotency_retention, chrono::Duration::hours(24));
        assert_eq!(o.link_cache_bytes, 64 << 20);
        assert!(o.metrics_token.is_none() && o.metrics_bind.is_none());
        for (raw, key) in [
            (
                RawOperations {
                    idempotency_retention_hours: 23,
                    ..Default::default()
                },
                "KFACTOR_IDEMPOTENCY_RETENTION_HOURS",
            ),
            (
                RawOperations {
                    retention_batch_size: 0,
                    ..Default::default()
                },
                "KFACTOR_RETENTION_BATCH_SIZE",
            ),
            (
                RawOperations {
                    metrics_token: Some(Text::Str("short".into())),
                    ..Default::default()
                },
                "KFACTOR_METRICS_TOKEN",
            ),
            (
                RawOperations {
                    metrics_bind: Some("localhost".into()),
                    ..Default::default()
                },
                "KFACTOR_METRICS_BIND",
            ),
        ] {
            assert_eq!(raw.validate().unwrap_err().given_as, key);
        }
        let o = RawOperations {
            metrics_token: Some(Text::Num(12345678901234567890)),
            metrics_bind: Some("127.0.0.1:9090".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(o.metrics_token.unwrap().0, b"12345678901234567890");
        assert_eq!(o.metrics_bind.unwrap().port(), 9090);
    }
}
