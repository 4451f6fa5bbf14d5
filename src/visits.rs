//! Share-link visit recording: the hot path.
//!
//! A link posted to a big audience gets thousands of opens a second. Instead of one
//! transaction per open, a single writer task group-commits: it takes every visit waiting in
//! its queue (up to [`MAX_BATCH`]; a small batch waits up to 2 ms for more), writes them in
//! one transaction, and only then acknowledges each request. While one batch commits the next
//! one queues up, so batches grow with load, and a request is acknowledged only after its
//! visit is durable (an acknowledged visit survives kill -9).
use entity::ids::LinkVisitId;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, OnConflict},
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::json;

use crate::{
    db::{bus::Bus, Db, Tx},
    domain::{ids::SharedLinkId, tenancy},
    events::ActivityType,
    outbox::{
        self,
        visits::{Queued, Visit, VisitInbox, VisitRefused},
        Actor, Event,
    },
    rollups::Rollup,
};
use entity::{link_visitors, link_visits, shared_links};

/// Most visits written in one transaction.
pub const MAX_BATCH: usize = 1000;
/// Visits that may wait for the writer before senders wait too.
pub const QUEUE_CAPACITY: usize = MAX_BATCH * 16;
/// A batch smaller than this waits up to [`LINGER`] for company: a commit costs about the
/// same for one visit as for fifty, so under load a short wait buys much larger batches.
const FULL_ENOUGH: usize = 64;
/// How long a small batch waits for more visits.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Starts the writer task, draining `inbox` until every queue handle is gone.
pub fn spawn(db: Db, bus: Bus, inbox: VisitInbox) -> tokio::task::JoinHandle<()> {
    tokio::spawn(writer(db, bus, inbox))
}

async fn writer(db: Db, bus: Bus, mut inbox: VisitInbox) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = inbox.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Some(v) => batch.push(v),
                None if batch.len() >= FULL_ENOUGH => break,
                None => match tokio::time::timeout_at(deadline, inbox.recv()).await {
                    Ok(Some(v)) => batch.push(v),
                    _ => break,
                },
            }
        }
        let started = Instant::now();
        let visits: Vec<&Visit> = batch.iter().map(|q| &q.visit).collect();
        let size = visits.len();
        let result = commit(&db, &bus, &visits).await;
        metrics::histogram!("kfactor_visit_batch_size").record(size as f64);
        metrics::histogram!("kfactor_visit_batch_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(gone) => {
                for q in batch.drain(..) {
                    let outcome = if gone.contains(&q.visit.link) {
                        Err(VisitRefused::Gone)
                    } else {
                        Ok(())
                    };
                    q.answer(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, visits = size, "committing a visit batch failed");
                for q in batch.drain(..) {
                    q.answer(Err(VisitRefused::Failed(e.to_string())));
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
) -> Result<Rollup, sea_orm::DbErr> {
    use crate::rollups::{col, day_of, PLATFORM};
    let mut r = Rollup::default();
    let mut seen = BTreeSet::new();
    for v in visits {
        let day = day_of(v.at);
        for scope in [PLATFORM, v.org.0] {
            r.days.entry((scope, day.clone())).or_insert([0; 15])[col::VISITS] += 1;
            seen.insert((scope, v.visitor_id.clone(), day.clone()));
        }
    }
    let firsts = crate::domain::metrics::visitors::visited(txn, &seen)
        .await
        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
    r.merge(&firsts);
    Ok(r)
}

/// Writes one batch: the visit rows, new distinct visitors, the links' counters and one
/// SHARED_LINK_VISITED event per link that gained visitors. Counters change in the same
/// transaction as the rows they count, so they cannot drift. The events go through the
/// outbox and the commit through [`Tx::commit`], like every other write: subscribers hear of
/// them after commit, and in-process caches (the SQLite link cache) see the new counters.
/// Returns the links that were gone.
async fn commit(
    db: &Db,
    bus: &Bus,
    visits: &[&Visit],
) -> Result<BTreeSet<SharedLinkId>, sea_orm::DbErr> {
    let mut tx = Tx::begin(db).await?;
    // Visit rows, distinct visitors, counters and SHARED_LINK_VISITED events: nothing a guest
    // sees of a link, so the link cache stays valid under any number of visits.
    tx.leaves_caches_valid();
    // A link deleted (with its project) after it was resolved must not fail everyone else's
    // visits on its foreign key: its visits are answered NOT_FOUND instead.
    let wanted: BTreeSet<SharedLinkId> = visits.iter().map(|v| v.link).collect();
    let present: BTreeSet<SharedLinkId> = shared_links::Entity::find()
        .select_only()
        .column(shared_links::Column::Id)
        .filter(shared_links::Column::Id.is_in(wanted.iter().copied()))
        .into_tuple::<SharedLinkId>()
        .all(&*tx)
        .await?
        .into_iter()
        .collect();
    let gone: BTreeSet<SharedLinkId> = wanted.difference(&present).copied().collect();
    let visits: Vec<&Visit> = visits
        .iter()
        .copied()
        .filter(|v| present.contains(&v.link))
        .collect();
    if visits.is_empty() {
        return Ok(gone);
    }
    link_visits::Entity::insert_many(visits.iter().map(|v| link_visits::ActiveModel {
        id: Set(LinkVisitId::generate()),
        shared_link_id: Set(v.link),
        organization_id: Set(v.org),
        visitor_id: Set(v.visitor_id.clone()),
        user_id: Set(v.user_id),
        created_at: Set(v.at),
    }))
    .exec_without_returning(&*tx)
    .await?;
    let rollup = growth(&tx, &visits).await?;
    tx.add_rollup(&rollup);

    let mut by_link: BTreeMap<SharedLinkId, Vec<&Visit>> = BTreeMap::new();
    for v in visits.iter().copied() {
        by_link.entry(v.link).or_default().push(v);
    }
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
        .exec_without_returning(&*tx)
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
            .exec(&*tx)
            .await?;
        if new_visitors > 0 {
            let resource = tenancy::find_in_org::<shared_links::Entity>(vs[0].org, link)
                .one(&*tx)
                .await?
                .map(|l| ("PROJECT", l.resource_id));
            let event = Event {
                org: vs[0].org,
                kind: ActivityType::SharedLinkVisited,
                actor: Actor::default(),
                resource,
                summary: if new_visitors == 1 {
                    "Someone new opened a shared link".into()
                } else {
                    format!("{new_visitors} new people opened a shared link")
                },
                data: json!({
                    "sharedLinkId": link.to_string(),
                    "newVisitors": new_visitors,
                    "visits": vs.len(),
                }),
                webhook: None,
            };
            outbox::record(&mut tx, last, event).await?;
        }
    }
    tx.commit(bus).await?;
    Ok(gone)
}
