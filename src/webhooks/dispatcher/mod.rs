//! The delivery engine.
//!
//! 1. **Fan-out**: outbox messages not yet dispatched are claimed (`FOR UPDATE SKIP LOCKED` on
//!    PostgreSQL), turned into one delivery per matching enabled endpoint and marked
//!    dispatched, in one transaction: every message fans out exactly once.
//! 2. **Claim**: due deliveries are leased (`locked_until`, `lease_id`) in a short
//!    transaction, again with SKIP LOCKED, so several instances never send the same attempt;
//!    a lease that expires (its holder died) is claimed again.
//! 3. **Send**: each claimed delivery is sent in its own task, bounded by a semaphore and by a
//!    per-endpoint cap, so a slow or dead endpoint never delays the others.
//! 4. **Record**: finished attempts are group-committed by one recorder task: it takes every
//!    attempt that finished while the previous batch was committing and, in one transaction,
//!    logs them and moves their deliveries on (succeeded, retry at the next step of the
//!    schedule, or failed) where the sender's lease still holds. A commit costs about the same
//!    for one attempt as for a hundred, so batches grow with load. An attempt keeps its
//!    concurrency slot until it is recorded, so recording back-pressures sending.
//!
//! The dispatcher wakes when a transaction that wrote messages commits, and polls every
//! second as a backup (other instances' messages, due retries).
//!
//! One file a step: `fanout`, `claim`, `send`, `record`; beside them `retry` (where a
//! delivery goes after an attempt, `Retry-After`), `health` (failing and disabled endpoints),
//! `report` (metrics and logs of recorded attempts); retention is `crate::retention`.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration as StdDuration, Instant},
};

use entity::ids::WebhookEndpointId;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use uuid::Uuid;

use crate::domain::{webhooks::DeliveryStatus, Services};
use crate::{crypto::signing, egress};
use entity::{
    webhook_deliveries as deliveries, webhook_endpoints as endpoints, webhook_messages as messages,
};

mod claim;
mod fanout;
mod health;
mod record;
mod report;
mod retry;
mod send;

/// How long a dispatcher holds a claimed delivery: well beyond the request timeout.
const LEASE_SECONDS: i64 = 60;
/// Whole-request timeout of one attempt.
pub const TIMEOUT: StdDuration = StdDuration::from_secs(15);
/// How much of a response body the attempt log keeps.
pub const MAX_RESPONSE_BODY: usize = 1024;
/// An endpoint failing continuously for this long is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;

/// One claimed delivery with everything needed to send it.
struct Job {
    delivery: deliveries::Model,
    message: Arc<messages::Model>,
    endpoint: Arc<endpoints::Model>,
    keys: Arc<Vec<signing::SigningKey>>,
    lease: Uuid,
}

/// The background sender of webhook deliveries.
pub struct Dispatcher {
    svc: Arc<Services>,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    inflight: Mutex<HashMap<WebhookEndpointId, usize>>,
    per_endpoint: usize,
    freed: Notify,
}

impl Dispatcher {
    /// A dispatcher with an HTTP client that follows no redirects, times out after 15 s and
    /// (unless private addresses are allowed) resolves names through the SSRF guard.
    pub fn new(svc: Arc<Services>) -> anyhow::Result<Arc<Dispatcher>> {
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(StdDuration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on our behalf and bypass the address check.
            .no_proxy()
            .user_agent(concat!("kfactor-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64);
        if !svc.config.webhook_allow_private {
            builder = builder.dns_resolver(egress::resolver());
        }
        let concurrency = svc.config.webhook_concurrency;
        Ok(Arc::new(Dispatcher {
            client: builder.build()?,
            permits: Arc::new(Semaphore::new(concurrency)),
            inflight: Mutex::new(HashMap::new()),
            per_endpoint: (concurrency / 4).max(1),
            freed: Notify::new(),
            svc,
        }))
    }

    /// Runs forever: fans out and sends whenever woken, and at least every second.
    /// Runs until `stop` turns true: then it claims nothing more, lets the attempts in
    /// flight finish (each within the request timeout) and records them, so a restart sends
    /// nothing twice.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // Sends run in a set owned by this loop: when the dispatcher is aborted (a crash),
        // its in-flight sends stop with it (their leases expire and another dispatcher
        // resumes).
        let mut sends = tokio::task::JoinSet::new();
        let (mut finished, queue) = mpsc::unbounded_channel();
        let mut recorder = tokio::task::JoinSet::new();
        recorder.spawn(self.clone().record_loop(queue));
        let mut last_gauge: Option<Instant> = None;
        while !*stop.borrow() {
            let mut busy = false;
            match self.fan_out().await {
                Ok(n) => busy |= n > 0,
                Err(e) => tracing::error!(error = ?e, "webhook fan-out failed"),
            }
            while sends.try_join_next().is_some() {}
            if let Some(ended) = recorder.try_join_next() {
                // Only a panic ends it. Attempts it had not recorded are sent again when
                // their leases expire.
                tracing::error!(?ended, "the webhook recorder stopped; restarting it");
                let queue;
                (finished, queue) = mpsc::unbounded_channel();
                recorder.spawn(self.clone().record_loop(queue));
            }
            match self.claim_and_send(&mut sends, &finished).await {
                Ok(n) => busy |= n > 0,
                Err(e) => tracing::error!(error = ?e, "claiming webhook deliveries failed"),
            }
            if last_gauge.is_none_or(|t| t.elapsed() > StdDuration::from_secs(5)) {
                last_gauge = Some(Instant::now());
                if let Ok(n) = deliveries::Entity::find()
                    .filter(deliveries::Column::Status.eq(DeliveryStatus::Pending))
                    .count(&self.svc.db.read)
                    .await
                {
                    metrics::gauge!("kfactor_webhook_queue_depth").set(n as f64);
                }
            }
            if busy {
                continue;
            }
            tokio::select! {
                _ = self.svc.bus.webhooks_woken() => {}
                _ = self.freed.notified() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
            }
        }
        tracing::info!(in_flight = sends.len(), "webhook dispatcher stopping");
        while sends.join_next().await.is_some() {}
        // The sends held the other senders: once this one is gone the recorder drains its
        // queue and ends.
        drop(finished);
        while recorder.join_next().await.is_some() {}
    }
}

/// Starts the dispatcher in the background.
pub fn spawn(
    svc: Arc<Services>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let d = Dispatcher::new(svc)?;
    Ok(tokio::spawn(d.run(stop)))
}
