//! Fan-out: undispatched outbox messages become one delivery per matching endpoint.
use entity::ids::OrgId;
use sea_orm::{
    sea_query::{Expr, LockBehavior, LockType},
    ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};

use super::Dispatcher;
use crate::{db::Tx, domain::webhooks as rules};
use entity::{
    webhook_deliveries as deliveries, webhook_endpoints as endpoints, webhook_messages as messages,
};

/// Messages fanned out per transaction.
const FAN_OUT_BATCH: u64 = 500;

impl Dispatcher {
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
        let mut orgs: Vec<OrgId> = msgs.iter().filter_map(|m| m.organization_id).collect();
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
                if !same_org {
                    continue;
                }
                // A malformed filter sends nothing to that endpoint (never "everything"),
                // and does not hold up the other endpoints.
                match rules::wants(e, &m.event_type) {
                    Ok(true) => rows.push(rules::new_delivery(e.id, m.id, now)),
                    Ok(false) => {}
                    Err(err) => tracing::error!(error = %err, "skipping webhook endpoint"),
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
}
