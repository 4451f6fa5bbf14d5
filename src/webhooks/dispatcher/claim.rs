//! Claim: due deliveries are leased in a short transaction and handed to send tasks, within
//! the dispatcher's capacity and each endpoint's cap.
use std::{collections::HashMap, sync::Arc};

use chrono::Duration;
use entity::ids::{WebhookAttemptId, WebhookEndpointId, WebhookMessageId};
use sea_orm::{
    sea_query::{Expr, LockBehavior, LockType, Query},
    ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use uuid::Uuid;

use super::{record::Finished, Dispatcher, Job, LEASE_SECONDS};
use crate::{
    crypto::signing,
    db::Tx,
    domain::webhooks::{self as rules, DeliveryStatus},
};
use entity::{
    webhook_deliveries as deliveries, webhook_endpoints as endpoints, webhook_messages as messages,
};

/// Deliveries claimed per transaction.
pub(super) const CLAIM_BATCH: usize = 200;

/// One send's share of the dispatcher's capacity: a concurrency permit and a count against
/// its endpoint's cap. Released (and the claim loop woken) when dropped, i.e. once the
/// attempt is recorded.
pub(super) struct Slot {
    dispatcher: Arc<Dispatcher>,
    endpoint: WebhookEndpointId,
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

impl Dispatcher {
    /// Claims due deliveries up to the free capacity and starts sending them. Returns how
    /// many it started.
    pub(super) async fn claim_and_send(
        self: &Arc<Self>,
        sends: &mut tokio::task::JoinSet<()>,
        finished: &mpsc::UnboundedSender<Finished>,
    ) -> anyhow::Result<usize> {
        let free = self.permits.available_permits().min(CLAIM_BATCH);
        if free == 0 {
            return Ok(0);
        }
        let saturated: Vec<WebhookEndpointId> = {
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
            .filter(deliveries::Column::Status.eq(DeliveryStatus::Pending))
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
            let mut counts: HashMap<WebhookEndpointId, usize> = HashMap::new();
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
        let msgs: HashMap<WebhookMessageId, Arc<messages::Model>> = messages::Entity::find()
            .filter(messages::Column::Id.is_in(take.iter().map(|d| d.message_id)))
            .all(db)
            .await?
            .into_iter()
            .map(|m| (m.id, Arc::new(m)))
            .collect();
        let eps: HashMap<WebhookEndpointId, Arc<endpoints::Model>> = endpoints::Entity::find()
            .filter(endpoints::Column::Id.is_in(take.iter().map(|d| d.endpoint_id)))
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.id, Arc::new(e)))
            .collect();
        let keys: HashMap<WebhookEndpointId, Arc<Vec<signing::SigningKey>>> =
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
                    attempt_id: WebhookAttemptId::generate(),
                    job,
                    out,
                    at,
                    _slot: slot,
                });
            });
        }
        Ok(started)
    }
}
