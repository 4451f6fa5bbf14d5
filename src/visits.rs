//! Share-link visit recording: the hot path.
//!
//! A link posted to a big audience gets thousands of opens a second. Instead of one
//! transaction per open, a single writer task group-commits: it takes every visit waiting in
//! its queue (up to [`MAX_BATCH`]; a small batch waits up to 2 ms for more), writes them in
//! one transaction, and only then acknowledges each request. While one batch commits the next
//! one queues up, so batches grow with load, and a request is acknowledged only after its
//! visit is durable (an acknowledged visit survives kill -9).
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, OnConflict},
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    db::Db,
    domain::{activity::ActivityType, DomainError, DomainResult},
    pubsub::Bus,
};
use entity::{link_visitors, link_visits, shared_links};

/// Most visits written in one transaction.
pub const MAX_BATCH: usize = 1000;
/// A batch smaller than this waits up to [`LINGER`] for company: a commit costs about the
/// same for one visit as for fifty, so under load a short wait buys much larger batches.
const FULL_ENOUGH: usize = 64;
/// How long a small batch waits for more visits.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// One open of a shared link.
#[derive(Clone, Debug)]
pub struct Visit {
    /// The link.
    pub link: Uuid,
    /// Its organization.
    pub org: Uuid,
    /// The resource it shares.
    pub resource: Uuid,
    /// Distinct-visitor key: a user's id, a guest's visitor id, or one per request.
    pub visitor_id: String,
    /// The signed-in visitor, if any.
    pub user_id: Option<Uuid>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a visit was not recorded.
#[derive(Clone, Debug)]
enum Refused {
    /// The link was deleted (with its project) after it was resolved.
    Gone,
    /// The batch failed to commit.
    Failed(String),
}

type Ack = oneshot::Sender<Result<(), Refused>>;

/// Handle to the visit writer.
#[derive(Clone, Debug)]
pub struct VisitRecorder {
    queue: mpsc::Sender<(Visit, Ack)>,
}

impl VisitRecorder {
    /// Starts the writer task.
    pub fn spawn(db: Db, bus: Bus) -> VisitRecorder {
        let (queue, rx) = mpsc::channel(MAX_BATCH * 16);
        tokio::spawn(writer(db, bus, rx));
        VisitRecorder { queue }
    }

    /// Records a visit; returns once it is committed.
    pub async fn record(&self, visit: Visit) -> DomainResult<()> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send((visit, ack))
            .await
            .map_err(|_| DomainError::Internal(anyhow::anyhow!("visit writer stopped")))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Refused::Gone)) => Err(DomainError::NotFound("Shared link")),
            Ok(Err(Refused::Failed(e))) => Err(DomainError::Internal(anyhow::anyhow!(
                "recording visits failed: {e}"
            ))),
            Err(_) => Err(DomainError::Internal(anyhow::anyhow!(
                "visit writer stopped"
            ))),
        }
    }
}

async fn writer(db: Db, bus: Bus, mut rx: mpsc::Receiver<(Visit, Ack)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(v) => batch.push(v),
                Err(_) if batch.len() >= FULL_ENOUGH => break,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(v)) => batch.push(v),
                    _ => break,
                },
            }
        }
        let started = Instant::now();
        let (visits, acks): (Vec<Visit>, Vec<Ack>) = batch.drain(..).unzip();
        let result = commit(&db, &bus, &visits).await;
        metrics::histogram!("kfactor_visit_batch_size").record(visits.len() as f64);
        metrics::histogram!("kfactor_visit_batch_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok((events, gone)) => {
                bus.publish(events);
                for (visit, ack) in visits.iter().zip(acks) {
                    let _ = ack.send(if gone.contains(&visit.link) {
                        Err(Refused::Gone)
                    } else {
                        Ok(())
                    });
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, visits = visits.len(), "committing a visit batch failed");
                for ack in acks {
                    let _ = ack.send(Err(Refused::Failed(e.to_string())));
                }
            }
        }
    }
}

/// The growth rollups of a batch of visits: opens per day, and the days each visitor came
/// (for distinct visitors), on the platform and in each link's organization.
async fn growth(
    txn: &sea_orm::DatabaseTransaction,
    visits: &[&Visit],
) -> Result<(), sea_orm::DbErr> {
    use crate::rollups::{col, day_of, Rollup, PLATFORM};
    let mut r = Rollup::default();
    let mut seen = BTreeSet::new();
    for v in visits {
        let day = day_of(v.at);
        for scope in [PLATFORM, v.org] {
            r.days.entry((scope, day.clone())).or_insert([0; 15])[col::VISITS] += 1;
            seen.insert((scope, v.visitor_id.clone(), day.clone()));
        }
    }
    let firsts = crate::domain::metrics::visitors::visited(txn, &seen)
        .await
        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
    r.merge(&firsts);
    crate::rollups::flush(txn, &r).await
}

/// Writes one batch: the visit rows, new distinct visitors, the links' counters and one
/// SHARED_LINK_VISITED event per link that gained visitors. Counters change in the same
/// transaction as the rows they count, so they cannot drift.
async fn commit(
    db: &Db,
    bus: &Bus,
    visits: &[Visit],
) -> Result<(Vec<crate::pubsub::ActivityMessage>, BTreeSet<Uuid>), sea_orm::DbErr> {
    let txn = db.write.begin().await?;
    // A link deleted (with its project) after it was resolved must not fail everyone else's
    // visits on its foreign key: its visits are answered NOT_FOUND instead.
    let wanted: BTreeSet<Uuid> = visits.iter().map(|v| v.link).collect();
    let present: BTreeSet<Uuid> = shared_links::Entity::find()
        .select_only()
        .column(shared_links::Column::Id)
        .filter(shared_links::Column::Id.is_in(wanted.iter().copied()))
        .into_tuple::<Uuid>()
        .all(&txn)
        .await?
        .into_iter()
        .collect();
    let gone: BTreeSet<Uuid> = wanted.difference(&present).copied().collect();
    let visits: Vec<&Visit> = visits
        .iter()
        .filter(|v| present.contains(&v.link))
        .collect();
    if visits.is_empty() {
        return Ok((Vec::new(), gone));
    }
    link_visits::Entity::insert_many(visits.iter().map(|v| link_visits::ActiveModel {
        id: Set(Uuid::now_v7()),
        shared_link_id: Set(v.link),
        organization_id: Set(v.org),
        visitor_id: Set(v.visitor_id.clone()),
        user_id: Set(v.user_id),
        created_at: Set(v.at),
    }))
    .exec_without_returning(&txn)
    .await?;
    growth(&txn, &visits).await?;

    let mut by_link: BTreeMap<Uuid, Vec<&Visit>> = BTreeMap::new();
    for v in visits.iter().copied() {
        by_link.entry(v.link).or_default().push(v);
    }
    let mut events = Vec::new();
    for (link, vs) in by_link {
        let mut visitors: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        for v in &vs {
            visitors.entry(v.visitor_id.as_str()).or_insert(v.at);
        }
        let new_visitors = link_visitors::Entity::insert_many(visitors.iter().map(|(id, at)| {
            link_visitors::ActiveModel {
                shared_link_id: Set(link),
                visitor_id: Set(id.to_string()),
                first_seen_at: Set(*at),
            }
        }))
        .on_conflict(
            OnConflict::columns([
                link_visitors::Column::SharedLinkId,
                link_visitors::Column::VisitorId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        let first = vs.iter().map(|v| v.at).min().expect("non-empty");
        let last = vs.iter().map(|v| v.at).max().expect("non-empty");
        shared_links::Entity::update_many()
            .col_expr(
                shared_links::Column::AccessCount,
                Expr::col(shared_links::Column::AccessCount).add(vs.len() as i64),
            )
            .col_expr(
                shared_links::Column::UniqueVisitors,
                Expr::col(shared_links::Column::UniqueVisitors).add(new_visitors as i64),
            )
            .col_expr(
                shared_links::Column::FirstAccessedAt,
                Func::coalesce([
                    Expr::col(shared_links::Column::FirstAccessedAt),
                    Expr::value(first),
                ])
                .into(),
            )
            .col_expr(shared_links::Column::LastAccessedAt, Expr::value(last))
            .filter(shared_links::Column::Id.eq(link))
            .exec(&txn)
            .await?;
        if new_visitors > 0 {
            let org = vs[0].org;
            let row = entity::activity_events::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(org),
                event_type: Set(ActivityType::SharedLinkVisited.as_str().into()),
                actor_user_id: Set(None),
                actor_guest_name: Set(None),
                resource_type: Set(Some("PROJECT".into())),
                resource_id: Set(shared_links::Entity::find_by_id(link)
                    .one(&txn)
                    .await?
                    .map(|l| l.resource_id)),
                summary: Set(if new_visitors == 1 {
                    "Someone new opened a shared link".into()
                } else {
                    format!("{new_visitors} new people opened a shared link")
                }),
                data: Set(json!({
                    "sharedLinkId": crate::domain::ids::SharedLinkId(link).to_string(),
                    "newVisitors": new_visitors,
                    "visits": vs.len(),
                })),
                created_at: Set(last),
            };
            let row = sea_orm::ActiveModelTrait::insert(row, &txn).await?;
            events.push(std::sync::Arc::new(row));
        }
    }
    bus.announce(&txn, &events, false, &[]).await?;
    txn.commit().await?;
    Ok((events, gone))
}
