//! Send: one signed HTTP attempt of a claimed delivery, and what it came to.
use std::time::Instant;

use super::{retry::retry_after_seconds, Dispatcher, Job, MAX_RESPONSE_BODY, TIMEOUT};
use crate::{crypto::signing, egress, outbox};

/// What one HTTP attempt came to.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) status: Option<u16>,
    pub(super) duration_ms: i32,
    pub(super) error: Option<String>,
    pub(super) body: Option<String>,
    pub(super) retry_after: Option<i64>,
}

impl Outcome {
    pub(super) fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub(super) fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

impl Dispatcher {
    /// Sends one attempt.
    pub(super) async fn attempt(&self, job: &Job) -> Outcome {
        let started = Instant::now();
        let mut out = Outcome::default();
        let body = match serde_json::to_vec(&job.message.payload) {
            Ok(b) => b,
            Err(e) => {
                out.error = Some(format!("cannot serialize the payload: {e}"));
                return out;
            }
        };
        if job.keys.is_empty() {
            // Never send unsigned: receivers could not tell it from a forgery.
            out.error = Some("the endpoint has no signing secret; rotate its secret".into());
            return out;
        }
        if let Some(refused) = self.refused_literal(&job.endpoint.url) {
            out.error = Some(refused);
            return out;
        }
        let msg_id = outbox::message_id(job.message.id);
        let timestamp = self.svc.now().timestamp();
        let signature = signing::signature_header(&job.keys, &msg_id, timestamp, &body);
        let sent = self
            .client
            .post(&job.endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                out.status = Some(status);
                if status == 429 || status == 503 {
                    let now = self.svc.now();
                    out.retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry_after_seconds(v, now));
                }
                let mut buf = Vec::new();
                while buf.len() < MAX_RESPONSE_BODY {
                    match resp.chunk().await {
                        Ok(Some(c)) => buf.extend_from_slice(&c),
                        Ok(None) => break,
                        Err(e) => {
                            out.error = Some(format!("reading the response: {}", chain(&e)));
                            break;
                        }
                    }
                }
                buf.truncate(MAX_RESPONSE_BODY);
                out.body = (!buf.is_empty()).then(|| storable(&String::from_utf8_lossy(&buf)));
                if out.error.is_none() && !out.success() {
                    out.error = Some(format!("HTTP {status}"));
                }
            }
            Err(e) => {
                out.error = Some(if e.is_timeout() {
                    format!("timed out after {} s", TIMEOUT.as_secs())
                } else {
                    chain(&e)
                });
            }
        }
        out.duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        out
    }

    /// The guard's refusal of a literal non-public address (names are refused by its
    /// resolver at connect time). Checked again here because the endpoint may have been
    /// saved while private addresses were allowed.
    fn refused_literal(&self, url: &str) -> Option<String> {
        if self.svc.config.webhook_allow_private {
            return None;
        }
        egress::literal(&reqwest::Url::parse(url).ok()?).map(|_| egress::REFUSED.to_string())
    }
}

/// Text as the attempt log can store it: PostgreSQL text cannot hold NUL, which binary
/// response bodies contain.
pub(super) fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// An error and its causes, "outer: inner: root".
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}
