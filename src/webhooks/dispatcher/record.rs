//! Record: finished attempts are group-committed, and their deliveries moved on.
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Instant,
};

use chrono::{DateTime, Utc};
use entity::ids::{WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId};
use sea_orm::{
    sea_query::{Expr, LockType, OnConflict},
    ActiveValue::Set,
    ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    claim::Slot,
    health::Health,
    retry::Step,
    send::{storable, Outcome},
    Dispatcher, Job,
};
use crate::{db::Tx, domain::webhooks::DeliveryStatus};
use entity::{
    webhook_attempts as attempts, webhook_deliveries as deliveries, webhook_endpoints as endpoints,
};

/// Most finished attempts recorded per transaction.
const RECORD_BATCH: usize = 500;

/// An attempt that was made and waits to be recorded.
pub(super) struct Finished {
    /// The attempt row's id, fixed when the attempt finished: recording it twice (a commit
    /// whose outcome was unknown, then retried) writes one row.
    pub(super) attempt_id: WebhookAttemptId,
    pub(super) job: Job,
    pub(super) out: Outcome,
    /// When the attempt finished.
    pub(super) at: DateTime<Utc>,
    pub(super) _slot: Slot,
}

impl Dispatcher {
    /// Group-commits finished attempts until the dispatcher stops.
    pub(super) async fn record_loop(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<Finished>) {
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
    pub(super) async fn record(&self, batch: &[Finished]) -> anyhow::Result<()> {
        let schedule = &self.svc.config.webhook_retry_schedule;
        let mut tx = Tx::begin(&self.svc.db).await?;
        // Endpoints, then deliveries, each in id order: the order in which deleting an
        // endpoint takes them (its row, then its deliveries by cascade), so neither that nor
        // another instance's batch can deadlock with this one; a concurrent redelivery or
        // deletion waits for the batch. (PostgreSQL; SQLite has one writer.)
        let mut endpoint_ids: Vec<WebhookEndpointId> =
            batch.iter().map(|f| f.job.endpoint.id).collect();
        endpoint_ids.sort();
        endpoint_ids.dedup();
        // Read under the lock: their health below starts from these rows.
        let mut locked: HashMap<WebhookEndpointId, endpoints::Model> = endpoints::Entity::find()
            .filter(endpoints::Column::Id.is_in(endpoint_ids))
            .order_by(endpoints::Column::Id, Order::Asc)
            .lock(LockType::NoKeyUpdate)
            .all(&*tx)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let mut ids: Vec<WebhookDeliveryId> = batch.iter().map(|f| f.job.delivery.id).collect();
        ids.sort();
        let leases: HashMap<WebhookDeliveryId, Option<Uuid>> = deliveries::Entity::find()
            .select_only()
            .column(deliveries::Column::Id)
            .column(deliveries::Column::LeaseId)
            .filter(deliveries::Column::Id.is_in(ids))
            .order_by(deliveries::Column::Id, Order::Asc)
            .lock(LockType::Update)
            .into_tuple::<(WebhookDeliveryId, Option<Uuid>)>()
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
        let mut ended: HashMap<(DeliveryStatus, i32), Vec<WebhookDeliveryId>> = HashMap::new();
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
        let mut health: BTreeMap<WebhookEndpointId, Health> = BTreeMap::new();
        for (f, _) in &moved {
            let h = health.entry(f.job.endpoint.id).or_default();
            h.last_ok = f.out.success();
            h.any_ok |= h.last_ok;
            h.gone |= f.out.gone();
        }
        // Only endpoints that were failing have a streak to end.
        let healthy: Vec<WebhookEndpointId> = health
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
}

/// Moves deliveries to `step` and releases their leases.
pub(super) async fn moved_update(
    tx: &Tx,
    ids: &[WebhookDeliveryId],
    step: &Step,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(step.status))
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
