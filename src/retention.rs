//! Retention: operational rows that have served their purpose are deleted by a background
//! task on every instance, in bounded batches.
//!
//! What goes, and when (`KFACTOR_*` settings, README "Operating it"):
//! - sessions, `SESSION_RETENTION_DAYS` (7) after they expired;
//! - idempotency keys, `IDEMPOTENCY_RETENTION_HOURS` (24, the replay window) after their first
//!   use, finished or abandoned alike (past the window a reused key runs afresh anyway);
//! - webhook messages with their deliveries and attempts, `WEBHOOK_RETENTION_DAYS` (30) after
//!   they were written, once none of their deliveries is pending.
//!
//! Visit rows and activity events are never pruned: they are the facts the growth metrics are
//! computed from.
//!
//! Each statement deletes at most `RETENTION_BATCH_SIZE` rows chosen by a subquery; on
//! PostgreSQL the subquery takes its rows `FOR UPDATE SKIP LOCKED`, so instances pruning at
//! the same moment delete disjoint batches instead of waiting on each other, and on SQLite
//! (one writer) a short statement keeps the write connection free for requests in between.
use std::{sync::Arc, time::Duration as StdDuration};

use sea_orm::{
    sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query, SelectStatement},
    ColumnTrait, EntityTrait, QueryFilter,
};
use tokio::sync::watch;

use crate::domain::{webhooks::DeliveryStatus, Services};
use entity::{
    idempotency_keys as keys, sessions, webhook_deliveries as deliveries,
    webhook_messages as messages,
};

/// What one pass deleted, per kind of row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Sessions expired for longer than their retention.
    pub sessions: u64,
    /// Idempotency keys past their retention.
    pub idempotency_keys: u64,
    /// Webhook messages (their deliveries and attempts go with them).
    pub webhook_messages: u64,
}

impl Pruned {
    fn total(&self) -> u64 {
        self.sessions + self.idempotency_keys + self.webhook_messages
    }

    fn add(&mut self, other: Pruned) {
        self.sessions += other.sessions;
        self.idempotency_keys += other.idempotency_keys;
        self.webhook_messages += other.webhook_messages;
    }
}

/// Takes at most `limit` rows of the subquery, skipping rows another instance is deleting.
fn bounded(mut q: SelectStatement, limit: u64) -> SelectStatement {
    q.limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    q
}

/// One batch of each kind: deletes at most `RETENTION_BATCH_SIZE` rows of each.
pub async fn prune_batch(svc: &Services) -> anyhow::Result<Pruned> {
    let now = svc.now();
    let ops = &svc.config.operations;
    let limit = ops.retention_batch_size;
    let db = &svc.db.write;

    let expired = bounded(
        Query::select()
            .column(sessions::Column::Id)
            .from(sessions::Entity)
            .and_where(sessions::Column::ExpiresAt.lt(now - ops.session_retention))
            .to_owned(),
        limit,
    );
    let sessions = sessions::Entity::delete_many()
        .filter(sessions::Column::Id.in_subquery(expired))
        .exec(db)
        .await?
        .rows_affected;

    let old_keys = bounded(
        Query::select()
            .columns([keys::Column::Scope, keys::Column::Key])
            .from(keys::Entity)
            .and_where(keys::Column::CreatedAt.lt(now - ops.idempotency_retention))
            .to_owned(),
        limit,
    );
    let idempotency_keys = keys::Entity::delete_many()
        .filter(
            Expr::tuple([Expr::col(keys::Column::Scope), Expr::col(keys::Column::Key)])
                .in_subquery(old_keys),
        )
        .exec(db)
        .await?
        .rows_affected;

    let pending = Query::select()
        .column(deliveries::Column::MessageId)
        .from(deliveries::Entity)
        .and_where(deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .to_owned();
    let cutoff = now - chrono::Duration::days(svc.config.webhook_retention_days);
    let finished = bounded(
        Query::select()
            .column(messages::Column::Id)
            .from(messages::Entity)
            .and_where(messages::Column::CreatedAt.lt(cutoff))
            .and_where(messages::Column::DispatchedAt.is_not_null())
            .and_where(messages::Column::Id.not_in_subquery(pending))
            .to_owned(),
        limit,
    );
    let webhook_messages = messages::Entity::delete_many()
        .filter(messages::Column::Id.in_subquery(finished))
        .exec(db)
        .await?
        .rows_affected;

    Ok(Pruned {
        sessions,
        idempotency_keys,
        webhook_messages,
    })
}

/// Prunes batch after batch until nothing is past retention. Between batches the task yields
/// to requests waiting for the write connection.
pub async fn prune(svc: &Services) -> anyhow::Result<Pruned> {
    let mut total = Pruned::default();
    loop {
        let batch = prune_batch(svc).await?;
        total.add(batch);
        let limit = svc.config.operations.retention_batch_size;
        if [
            batch.sessions,
            batch.idempotency_keys,
            batch.webhook_messages,
        ]
        .iter()
        .all(|n| *n < limit)
        {
            return Ok(total);
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// Runs [`prune`] every `RETENTION_INTERVAL_SECONDS` until `stop`.
pub fn spawn(svc: Arc<Services>, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // The first pass waits one interval too: starting up is busy enough.
            tokio::select! {
                changed = stop.changed() => {
                    // Stopped, or the workers' owner is gone.
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
                _ = tokio::time::sleep(svc.config.operations.retention_interval) => {}
            }
            match prune(&svc).await {
                Ok(p) if p.total() > 0 => {
                    tracing::info!(
                        sessions = p.sessions,
                        idempotency_keys = p.idempotency_keys,
                        webhook_messages = p.webhook_messages,
                        "pruned rows past their retention"
                    );
                    record(p);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "pruning rows past their retention failed"),
            }
        }
    })
}

fn record(p: Pruned) {
    for (kind, n) in [
        ("sessions", p.sessions),
        ("idempotency_keys", p.idempotency_keys),
        ("webhook_messages", p.webhook_messages),
    ] {
        metrics::counter!("kfactor_retention_pruned_total", "kind" => kind).increment(n);
    }
}
