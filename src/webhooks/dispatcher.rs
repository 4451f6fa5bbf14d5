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
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sea_orm::{
    sea_query::{Expr, LockBehavior, LockType, OnConflict, Query},
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::{signing, ssrf};
use crate::{
    domain::{
        activity::ActivityType,
        ids::{OrgId, WebhookEndpointId},
        webhooks::{self as rules, DeliveryStatus},
        Services,
    },
    outbox::{self, Actor, Event, Tx},
};
use entity::{
    webhook_attempts as attempts, webhook_deliveries as deliveries, webhook_endpoints as endpoints,
    webhook_messages as messages,
};

/// How long a dispatcher holds a claimed delivery: well beyond the request timeout.
const LEASE_SECONDS: i64 = 60;
/// Whole-request timeout of one attempt.
pub const TIMEOUT: StdDuration = StdDuration::from_secs(15);
/// How much of a response body the attempt log keeps.
pub const MAX_RESPONSE_BODY: usize = 1024;
/// An endpoint failing continuously for this long is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;
/// Bounds of an honoured `Retry-After`.
const RETRY_AFTER_MIN: i64 = 1;
const RETRY_AFTER_MAX: i64 = 3600;
/// Messages fanned out per transaction.
const FAN_OUT_BATCH: u64 = 500;
/// Deliveries claimed per transaction.
const CLAIM_BATCH: usize = 200;
/// Most finished attempts recorded per transaction.
const RECORD_BATCH: usize = 500;

/// One claimed delivery with everything needed to send it.
struct Job {
    delivery: deliveries::Model,
    message: Arc<messages::Model>,
    endpoint: Arc<endpoints::Model>,
    keys: Arc<Vec<signing::SigningKey>>,
    lease: Uuid,
}

/// What one HTTP attempt came to.
#[derive(Debug, Default)]
struct Outcome {
    status: Option<u16>,
    duration_ms: i32,
    error: Option<String>,
    body: Option<String>,
    retry_after: Option<i64>,
}

impl Outcome {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// One send's share of the dispatcher's capacity: a concurrency permit and a count against
/// its endpoint's cap. Released (and the claim loop woken) when dropped, i.e. once the
/// attempt is recorded.
struct Slot {
    dispatcher: Arc<Dispatcher>,
    endpoint: Uuid,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut inflight = self.dispatcher.inflight.lock().expect("inflight lock");
            if let Some(n) = inflight.get_mut(&self.endpoint) {
                *n -= 1;
                if *n == 0 {
                    inflight.remove(&self.endpoint);
                }
            }
        }
        // Release before waking, so the woken claim loop sees the free permit.
        drop(self.permit.take());
        self.dispatcher.freed.notify_one();
    }
}

/// An attempt that was made and waits to be recorded.
struct Finished {
    /// The attempt row's id, fixed when the attempt finished: recording it twice (a commit
    /// whose outcome was unknown, then retried) writes one row.
    attempt_id: Uuid,
    job: Job,
    out: Outcome,
    /// When the attempt finished.
    at: DateTime<Utc>,
    _slot: Slot,
}

/// What a batch's attempts say about one endpoint.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    /// Some attempt succeeded.
    any_ok: bool,
    /// The attempt that finished last succeeded.
    last_ok: bool,
    /// Some attempt was answered 410 Gone.
    gone: bool,
}

/// Where a delivery goes after an attempt.
struct Step {
    status: DeliveryStatus,
    attempts: i32,
    next: Option<DateTime<Utc>>,
}

impl Step {
    /// Success ends the delivery; 410 or the last step of the schedule fails it; anything
    /// else retries after `Retry-After` (429/503, clamped) or the next step of the schedule.
    fn after(
        d: &deliveries::Model,
        out: &Outcome,
        at: DateTime<Utc>,
        schedule: &[StdDuration],
    ) -> Step {
        // A manual redelivery does not count against (or restart) the schedule.
        let attempts = if d.manual { d.attempts } else { d.attempts + 1 };
        let (status, next) = if out.success() {
            (DeliveryStatus::Succeeded, None)
        } else if out.gone() || attempts as usize >= schedule.len() {
            (DeliveryStatus::Failed, None)
        } else {
            let delay = match out.retry_after {
                Some(s) => Duration::seconds(s.clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX)),
                None => jitter(schedule[attempts as usize]),
            };
            (DeliveryStatus::Pending, Some(at + delay))
        };
        Step {
            status,
            attempts,
            next,
        }
    }
}

/// The background sender of webhook deliveries.
pub struct Dispatcher {
    svc: Arc<Services>,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    inflight: Mutex<HashMap<Uuid, usize>>,
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
            builder = builder.dns_resolver(ssrf::resolver());
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
                    .filter(deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
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

    /// Turns undispatched messages into deliveries. Returns how many messages it handled.
    pub async fn fan_out(&self) -> anyhow::Result<usize> {
        let now = self.svc.now();
        let tx = Tx::begin(&self.svc.db).await?;
        let msgs = messages::Entity::find()
            .filter(messages::Column::DispatchedAt.is_null())
            .order_by(messages::Column::Id, Order::Asc)
            .limit(FAN_OUT_BATCH)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&*tx)
            .await?;
        if msgs.is_empty() {
            return Ok(0);
        }
        let mut orgs: Vec<Uuid> = msgs.iter().filter_map(|m| m.organization_id).collect();
        orgs.sort();
        orgs.dedup();
        let eps = endpoints::Entity::find()
            .filter(endpoints::Column::Enabled.eq(true))
            .filter(
                Condition::any()
                    .add(endpoints::Column::OrganizationId.is_null())
                    .add(endpoints::Column::OrganizationId.is_in(orgs)),
            )
            .all(&*tx)
            .await?;
        let mut rows = Vec::new();
        for m in &msgs {
            for e in &eps {
                let same_org =
                    e.organization_id.is_none() || e.organization_id == m.organization_id;
                if same_org && rules::wants(e, &m.event_type) {
                    rows.push(rules::new_delivery(e.id, m.id, now));
                }
            }
        }
        let created = rows.len();
        // 12 columns a row: stay far below SQLite's bound-parameter limit.
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(1000));
            deliveries::Entity::insert_many(std::mem::replace(&mut rows, rest))
                .exec(&*tx)
                .await?;
        }
        messages::Entity::update_many()
            .col_expr(messages::Column::DispatchedAt, Expr::value(Some(now)))
            .filter(messages::Column::Id.is_in(msgs.iter().map(|m| m.id)))
            .exec(&*tx)
            .await?;
        tx.commit(&self.svc.bus).await?;
        metrics::counter!("kfactor_webhook_deliveries_created_total").increment(created as u64);
        Ok(msgs.len())
    }

    /// Claims due deliveries up to the free capacity and starts sending them. Returns how
    /// many it started.
    async fn claim_and_send(
        self: &Arc<Self>,
        sends: &mut tokio::task::JoinSet<()>,
        finished: &mpsc::UnboundedSender<Finished>,
    ) -> anyhow::Result<usize> {
        let free = self.permits.available_permits().min(CLAIM_BATCH);
        if free == 0 {
            return Ok(0);
        }
        let saturated: Vec<Uuid> = {
            let inflight = self.inflight.lock().expect("inflight lock");
            inflight
                .iter()
                .filter(|(_, n)| **n >= self.per_endpoint)
                .map(|(id, _)| *id)
                .collect()
        };
        let now = self.svc.now();
        let tx = Tx::begin(&self.svc.db).await?;
        let enabled = Query::select()
            .column(endpoints::Column::Id)
            .from(endpoints::Entity)
            .and_where(endpoints::Column::Enabled.eq(true))
            .to_owned();
        let mut q = deliveries::Entity::find()
            .filter(deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(deliveries::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(deliveries::Column::LockedUntil.is_null())
                    .add(deliveries::Column::LockedUntil.lt(now)),
            )
            .filter(deliveries::Column::EndpointId.in_subquery(enabled));
        if !saturated.is_empty() {
            q = q.filter(deliveries::Column::EndpointId.is_not_in(saturated));
        }
        let due = q
            .order_by(deliveries::Column::NextAttemptAt, Order::Asc)
            .limit(free as u64)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&*tx)
            .await?;
        // Respect the per-endpoint cap within this batch too.
        let mut take = Vec::with_capacity(due.len());
        {
            let inflight = self.inflight.lock().expect("inflight lock");
            let mut counts: HashMap<Uuid, usize> = HashMap::new();
            for d in due {
                let n = counts
                    .entry(d.endpoint_id)
                    .or_insert_with(|| inflight.get(&d.endpoint_id).copied().unwrap_or(0));
                if *n < self.per_endpoint {
                    *n += 1;
                    take.push(d);
                }
            }
        }
        if take.is_empty() {
            return Ok(0);
        }
        let lease = Uuid::now_v7();
        deliveries::Entity::update_many()
            .col_expr(
                deliveries::Column::LockedUntil,
                Expr::value(Some(now + Duration::seconds(LEASE_SECONDS))),
            )
            .col_expr(deliveries::Column::LeaseId, Expr::value(Some(lease)))
            .filter(deliveries::Column::Id.is_in(take.iter().map(|d| d.id)))
            .exec(&*tx)
            .await?;
        tx.commit(&self.svc.bus).await?;

        let db = &self.svc.db.read;
        let msgs: HashMap<Uuid, Arc<messages::Model>> = messages::Entity::find()
            .filter(messages::Column::Id.is_in(take.iter().map(|d| d.message_id)))
            .all(db)
            .await?
            .into_iter()
            .map(|m| (m.id, Arc::new(m)))
            .collect();
        let eps: HashMap<Uuid, Arc<endpoints::Model>> = endpoints::Entity::find()
            .filter(endpoints::Column::Id.is_in(take.iter().map(|d| d.endpoint_id)))
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.id, Arc::new(e)))
            .collect();
        let keys: HashMap<Uuid, Arc<Vec<signing::SigningKey>>> =
            rules::signing_keys(&self.svc, db, eps.keys().copied(), now)
                .await?
                .into_iter()
                .map(|(id, k)| (id, Arc::new(k)))
                .collect();
        let started = take.len();
        for d in take {
            let (Some(message), Some(endpoint)) = (
                msgs.get(&d.message_id).cloned(),
                eps.get(&d.endpoint_id).cloned(),
            ) else {
                // Deleted between claim and load: the cascade removed the delivery too.
                continue;
            };
            let permit = self.permits.clone().acquire_owned().await?;
            *self
                .inflight
                .lock()
                .expect("inflight lock")
                .entry(d.endpoint_id)
                .or_insert(0) += 1;
            let slot = Slot {
                dispatcher: self.clone(),
                endpoint: d.endpoint_id,
                permit: Some(permit),
            };
            let job = Job {
                keys: keys.get(&d.endpoint_id).cloned().unwrap_or_default(),
                delivery: d,
                message,
                endpoint,
                lease,
            };
            let this = self.clone();
            let finished = finished.clone();
            sends.spawn(async move {
                let out = this.attempt(&job).await;
                let at = this.svc.now();
                // Fails only when the dispatcher is stopping: the lease then expires and
                // the delivery is attempted again (at least once).
                let _ = finished.send(Finished {
                    attempt_id: Uuid::now_v7(),
                    job,
                    out,
                    at,
                    _slot: slot,
                });
            });
        }
        Ok(started)
    }

    /// Sends one attempt.
    async fn attempt(&self, job: &Job) -> Outcome {
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
        if let Some(refused) = self.literal_refusal(&job.endpoint.url) {
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

    /// A URL whose host is a literal non-public address never reaches the resolver, so it
    /// is checked here.
    fn literal_refusal(&self, url: &str) -> Option<String> {
        if self.svc.config.webhook_allow_private {
            return None;
        }
        let url = reqwest::Url::parse(url).ok()?;
        let host = url.host_str()?;
        let ip: std::net::IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        ssrf::forbidden(ip).map(|_| ssrf::REFUSED.to_string())
    }

    /// Group-commits finished attempts until the dispatcher stops.
    async fn record_loop(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<Finished>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while queue.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let started = Instant::now();
            if let Err(e) = self.record(&batch).await {
                // One bad row must not cost the others their record: retry one by one.
                tracing::warn!(error = ?e, attempts = batch.len(), "recording a batch of webhook attempts failed; recording them one by one");
                for f in &batch {
                    if let Err(e) = self.record(std::slice::from_ref(f)).await {
                        // The lease expires and the delivery is attempted again.
                        tracing::error!(error = ?e, delivery_id = %f.job.delivery.id, "recording a webhook attempt failed");
                    }
                }
            }
            metrics::histogram!("kfactor_webhook_record_batch_size").record(batch.len() as f64);
            metrics::histogram!("kfactor_webhook_record_batch_seconds")
                .record(started.elapsed().as_secs_f64());
            // Dropping the attempts frees their slots.
            batch.clear();
        }
    }

    /// Logs a batch of attempts and moves their deliveries (and maybe endpoints) on, in one
    /// transaction. A delivery whose lease was lost (it expired and another dispatcher holds
    /// it) gets its attempt logged but is left to its new holder.
    async fn record(&self, batch: &[Finished]) -> anyhow::Result<()> {
        let schedule = &self.svc.config.webhook_retry_schedule;
        let mut tx = Tx::begin(&self.svc.db).await?;
        // Endpoints, then deliveries, each in id order: the order in which deleting an
        // endpoint takes them (its row, then its deliveries by cascade), so neither that nor
        // another instance's batch can deadlock with this one; a concurrent redelivery or
        // deletion waits for the batch. (PostgreSQL; SQLite has one writer.)
        let mut endpoint_ids: Vec<Uuid> = batch.iter().map(|f| f.job.endpoint.id).collect();
        endpoint_ids.sort();
        endpoint_ids.dedup();
        // Read under the lock: their health below starts from these rows.
        let mut locked: HashMap<Uuid, endpoints::Model> = endpoints::Entity::find()
            .filter(endpoints::Column::Id.is_in(endpoint_ids))
            .order_by(endpoints::Column::Id, Order::Asc)
            .lock(LockType::NoKeyUpdate)
            .all(&*tx)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let mut ids: Vec<Uuid> = batch.iter().map(|f| f.job.delivery.id).collect();
        ids.sort();
        let leases: HashMap<Uuid, Option<Uuid>> = deliveries::Entity::find()
            .select_only()
            .column(deliveries::Column::Id)
            .column(deliveries::Column::LeaseId)
            .filter(deliveries::Column::Id.is_in(ids))
            .order_by(deliveries::Column::Id, Order::Asc)
            .lock(LockType::Update)
            .into_tuple::<(Uuid, Option<Uuid>)>()
            .all(&*tx)
            .await?
            .into_iter()
            .collect();
        // A delivery deleted meanwhile (its endpoint was deleted) has nothing to log against.
        let present: Vec<&Finished> = batch
            .iter()
            .filter(|f| leases.contains_key(&f.job.delivery.id))
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        for chunk in present.chunks(1000) {
            attempts::Entity::insert_many(chunk.iter().map(|f| {
                attempts::ActiveModel {
                    id: Set(f.attempt_id),
                    delivery_id: Set(f.job.delivery.id),
                    at: Set(f.at),
                    response_status: Set(f.out.status.map(i32::from)),
                    duration_ms: Set(f.out.duration_ms),
                    error: Set(f
                        .out
                        .error
                        .as_deref()
                        .map(|e| storable(&e.chars().take(1000).collect::<String>()))),
                    response_body: Set(f.out.body.clone()),
                    manual: Set(f.job.delivery.manual),
                }
            }))
            .on_conflict(
                OnConflict::column(attempts::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&*tx)
            .await?;
        }

        // Deliveries still under our lease move on: terminal ones in one statement per
        // (status, attempts), retries one by one (each has its own next attempt time).
        let mut ended: HashMap<(DeliveryStatus, i32), Vec<Uuid>> = HashMap::new();
        let mut moved: Vec<(&Finished, Step)> = Vec::with_capacity(present.len());
        for f in present {
            let d = &f.job.delivery;
            if leases.get(&d.id) != Some(&Some(f.job.lease)) {
                tracing::warn!(delivery_id = %d.id, "webhook lease lost before the attempt finished");
                continue;
            }
            let step = Step::after(d, &f.out, f.at, schedule);
            if step.next.is_some() {
                moved_update(&tx, &[d.id], &step, f.at).await?;
            } else {
                ended
                    .entry((step.status, step.attempts))
                    .or_default()
                    .push(d.id);
            }
            moved.push((f, step));
        }
        let now = self.svc.now();
        for ((status, attempts), ids) in &ended {
            let step = Step {
                status: *status,
                attempts: *attempts,
                next: None,
            };
            moved_update(&tx, ids, &step, now).await?;
        }

        // Each endpoint's health follows its attempts in the batch, in the order they finished.
        let mut health: BTreeMap<Uuid, Health> = BTreeMap::new();
        for (f, _) in &moved {
            let h = health.entry(f.job.endpoint.id).or_default();
            h.last_ok = f.out.success();
            h.any_ok |= h.last_ok;
            h.gone |= f.out.gone();
        }
        // Only endpoints that were failing have a streak to end.
        let healthy: Vec<Uuid> = health
            .iter()
            .filter(|(id, h)| {
                h.last_ok && !h.gone && locked.get(id).is_some_and(|e| e.failing_since.is_some())
            })
            .map(|(id, _)| *id)
            .collect();
        if !healthy.is_empty() {
            endpoints::Entity::update_many()
                .col_expr(
                    endpoints::Column::FailingSince,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(endpoints::Column::Id.is_in(healthy))
                .exec(&*tx)
                .await?;
        }
        for (id, h) in health {
            if let (true, Some(e)) = (!h.last_ok || h.gone, locked.remove(&id)) {
                self.endpoint_failed(&mut tx, e, h, now).await?;
            }
        }
        tx.commit(&self.svc.bus).await?;

        for (f, step) in moved {
            self.report(f, &step);
        }
        Ok(())
    }

    /// Marks an endpoint failing, and disables it after a 410 or five days of failures.
    async fn endpoint_failed(
        &self,
        tx: &mut Tx,
        e: endpoints::Model,
        h: Health,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        // A success earlier in the batch ended the old streak: the new one starts now.
        let since = if h.any_ok { None } else { e.failing_since };
        let reason = if h.gone {
            Some("The endpoint answered 410 Gone.".to_string())
        } else {
            match since {
                Some(since) if now - since >= Duration::days(DISABLE_AFTER_DAYS) => Some(format!(
                    "Every attempt failed for {DISABLE_AFTER_DAYS} days (since {}).",
                    since.format("%Y-%m-%d %H:%M UTC")
                )),
                _ => None,
            }
        };
        let mut am: endpoints::ActiveModel = e.clone().into();
        if since.is_none() {
            am.failing_since = Set(Some(now));
        }
        if let (Some(reason), true) = (&reason, e.enabled) {
            am.enabled = Set(false);
            am.disabled_reason = Set(Some(reason.clone()));
            am.updated_at = Set(now);
            disabled_event(tx, now, &e, reason).await?;
        }
        am.update(&**tx).await?;
        Ok(())
    }

    /// Metrics and logs of a recorded attempt.
    fn report(&self, f: &Finished, step: &Step) {
        let outcome = match step.status {
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Pending => "retry",
        };
        metrics::counter!("kfactor_webhook_attempts_total", "outcome" => outcome).increment(1);
        metrics::histogram!("kfactor_webhook_attempt_duration_seconds")
            .record(f.out.duration_ms as f64 / 1000.0);
        if step.status == DeliveryStatus::Succeeded {
            let latency = (f.at - f.job.message.created_at)
                .num_microseconds()
                .unwrap_or(0);
            metrics::histogram!("kfactor_webhook_delivery_latency_seconds")
                .record(latency as f64 / 1e6);
        }
        if step.status != DeliveryStatus::Pending {
            metrics::counter!("kfactor_webhook_deliveries_total", "status" => outcome).increment(1);
        }
        if !f.out.success() {
            tracing::info!(
                delivery_id = %f.job.delivery.id,
                endpoint_id = %WebhookEndpointId(f.job.endpoint.id),
                status = ?f.out.status,
                error = f.out.error.as_deref().unwrap_or(""),
                next_attempt_at = ?step.next,
                "webhook attempt failed"
            );
        }
    }
}

/// Moves deliveries to `step` and releases their leases.
async fn moved_update(
    tx: &Tx,
    ids: &[Uuid],
    step: &Step,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    deliveries::Entity::update_many()
        .col_expr(
            deliveries::Column::Status,
            Expr::value(step.status.as_str()),
        )
        .col_expr(deliveries::Column::Attempts, Expr::value(step.attempts))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(step.next))
        .col_expr(
            deliveries::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            deliveries::Column::LeaseId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(deliveries::Column::Manual, Expr::value(false))
        .col_expr(deliveries::Column::UpdatedAt, Expr::value(now))
        .filter(deliveries::Column::Id.is_in(ids.iter().copied()))
        .exec(&**tx)
        .await?;
    Ok(())
}

/// Records the WEBHOOK_DISABLED activity of an org endpoint (platform endpoints have no feed;
/// they are logged).
async fn disabled_event(
    tx: &mut Tx,
    now: DateTime<Utc>,
    e: &endpoints::Model,
    reason: &str,
) -> anyhow::Result<()> {
    let id = WebhookEndpointId(e.id);
    tracing::warn!(endpoint_id = %id, url = %e.url, reason, "webhook endpoint disabled");
    metrics::counter!("kfactor_webhook_endpoints_disabled_total").increment(1);
    if let Some(org) = e.organization_id {
        outbox::record(
            tx,
            now,
            Event {
                org: OrgId(org),
                kind: ActivityType::WebhookDisabled,
                actor: Actor::default(),
                resource: None,
                summary: format!("Webhooks to {} were disabled: {reason}", e.url),
                data: json!({ "endpointId": id.to_string(), "url": e.url, "reason": reason }),
                webhook: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// A schedule step with ±20% jitter, so retries of many deliveries do not arrive in step.
fn jitter(step: StdDuration) -> Duration {
    let ms = step.as_millis() as f64;
    if ms == 0.0 {
        return Duration::zero();
    }
    let factor = rand::rng().random_range(0.8..=1.2);
    Duration::milliseconds((ms * factor) as i64)
}

/// A `Retry-After` value in seconds from `now`: either delay-seconds or an HTTP-date
/// (RFC 9110 §10.2.3). A date in the past means "now".
fn retry_after_seconds(value: &str, now: DateTime<Utc>) -> Option<i64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<i64>() {
        return Some(secs);
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).num_seconds().max(0))
}

/// Text as the attempt log can store it: PostgreSQL text cannot hold NUL, which binary
/// response bodies contain.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// An error and its causes, "outer: inner: root".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
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

/// Starts the dispatcher in the background.
pub fn spawn(
    svc: Arc<Services>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let d = Dispatcher::new(svc)?;
    Ok(tokio::spawn(d.run(stop)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now: DateTime<Utc> = "2026-11-26T12:00:00Z".parse().unwrap();
        assert_eq!(retry_after_seconds("120", now), Some(120));
        assert_eq!(retry_after_seconds(" 5 ", now), Some(5));
        assert_eq!(
            retry_after_seconds("Thu, 26 Nov 2026 12:01:30 GMT", now),
            Some(90)
        );
        assert_eq!(
            retry_after_seconds("Thu, 26 Nov 2026 11:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(retry_after_seconds("soon", now), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..200 {
            let j = jitter(StdDuration::from_secs(100)).num_milliseconds();
            assert!((80_000..=120_000).contains(&j), "{j}");
        }
        assert_eq!(jitter(StdDuration::ZERO), Duration::zero());
    }
}
