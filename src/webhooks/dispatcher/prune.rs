//! Pruning: finished deliveries older than the retention go, with their messages and attempts.
use chrono::Duration;
use sea_orm::{sea_query::Query, ColumnTrait, EntityTrait, QueryFilter};

use crate::domain::{webhooks::DeliveryStatus, Services};
use entity::{webhook_deliveries as deliveries, webhook_messages as messages};

/// Deletes messages older than the retention whose deliveries are all finished; their
/// deliveries and attempts go with them. Returns how many messages were deleted.
pub async fn prune(svc: &Services) -> anyhow::Result<u64> {
    let cutoff = svc.now() - Duration::days(svc.config.webhook_retention_days);
    let pending = Query::select()
        .column(deliveries::Column::MessageId)
        .from(deliveries::Entity)
        .and_where(deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .to_owned();
    let r = messages::Entity::delete_many()
        .filter(messages::Column::CreatedAt.lt(cutoff))
        .filter(messages::Column::DispatchedAt.is_not_null())
        .filter(messages::Column::Id.not_in_subquery(pending))
        .exec(&svc.db.write)
        .await?;
    Ok(r.rows_affected)
}
