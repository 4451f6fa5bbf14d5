//! The link cache: what a link shows, kept for the visit hot path while nothing was written
//! since (SQLite).
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::domain::{DomainResult, Services};
use entity::{organizations, projects as project_rows, shared_links, users};

/// Caches what a link shows (link, project, organization, creator) for the visit hot path.
///
/// An entry is valid only while no write transaction that may change it has committed since
/// it was read (the bus's epoch), so it never shows a revoked link or an old version of a
/// project. On PostgreSQL other instances write too: their transactions announce that they
/// changed something (LISTEN/NOTIFY, `crate::pubsub`), which moves this instance's epoch
/// within milliseconds, and while the listener is not connected nothing cached is served.
///
/// It holds at most `budget` bytes (`KFACTOR_LINK_CACHE_BYTES`), weighing each entry by what
/// it holds (a project's content can be 100 kB), and evicts the least recently used first.
#[derive(Debug)]
pub struct LinkCache {
    budget: usize,
    entries: std::sync::Mutex<Entries>,
}

#[derive(Debug)]
pub(super) struct Entries {
    lru: lru::LruCache<uuid::Uuid, (u64, Joined, usize)>,
    bytes: usize,
}

impl LinkCache {
    /// A cache holding at most `budget` bytes; 0 turns it off.
    pub fn new(budget: usize) -> LinkCache {
        LinkCache {
            budget,
            entries: std::sync::Mutex::new(Entries {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// How many entries and bytes it holds now.
    pub fn usage(&self) -> (usize, usize) {
        let e = self.entries.lock().expect("link cache");
        (e.lru.len(), e.bytes)
    }

    /// What an entry weighs: its fixed part plus everything its strings hold (the debug
    /// rendering is an upper bound of those, whatever columns the rows gain later).
    fn weight(joined: &Joined) -> usize {
        std::mem::size_of::<(uuid::Uuid, (u64, Joined, usize))>() + format!("{joined:?}").len()
    }

    pub(super) async fn get(
        &self,
        svc: &Services,
        db: &impl ConnectionTrait,
        id: uuid::Uuid,
    ) -> DomainResult<Option<Joined>> {
        if self.budget == 0 {
            return load_joined(db, id).await;
        }
        // Read the epoch before the database: a write committing meanwhile makes the entry
        // stale at once. None: other instances' writes may go unheard, so none is served.
        let Some(epoch) = svc.bus.epoch() else {
            return load_joined(db, id).await;
        };
        if let Some((at, joined, _)) = self.entries.lock().expect("link cache").lru.get(&id) {
            if *at == epoch {
                return Ok(Some(joined.clone()));
            }
        }
        let joined = load_joined(db, id).await?;
        if let Some(j) = &joined {
            let weight = Self::weight(j);
            let mut e = self.entries.lock().expect("link cache");
            if let Some((_, _, old)) = e.lru.pop(&id) {
                e.bytes -= old;
            }
            // An entry larger than the whole budget is not worth evicting everything for.
            if weight <= self.budget {
                while e.bytes + weight > self.budget {
                    match e.lru.pop_lru() {
                        Some((_, (_, _, w))) => e.bytes -= w,
                        None => break,
                    }
                }
                e.lru.put(id, (epoch, j.clone(), weight));
                e.bytes += weight;
            }
            ::metrics::gauge!("kfactor_link_cache_bytes").set(e.bytes as f64);
        }
        Ok(joined)
    }
}

pub(super) type Joined = (
    shared_links::Model,
    project_rows::Model,
    organizations::Model,
    users::Model,
);

/// A link with its project, organization and creator, in one round trip.
pub(super) async fn load_joined(
    db: &impl ConnectionTrait,
    id: uuid::Uuid,
) -> DomainResult<Option<Joined>> {
    use sea_orm::{
        sea_query::{Alias, Expr, ExprTrait, Query},
        FromQueryResult, IdenStatic, Iterable,
    };
    fn cols<E: EntityTrait>(q: &mut sea_orm::sea_query::SelectStatement, prefix: &str)
    where
        E::Column: IdenStatic,
    {
        for c in E::Column::iter() {
            q.expr_as(
                Expr::col((E::default(), c)),
                Alias::new(format!("{prefix}{}", c.as_str())),
            );
        }
    }
    let mut q = Query::select();
    cols::<shared_links::Entity>(&mut q, "l_");
    cols::<project_rows::Entity>(&mut q, "p_");
    cols::<organizations::Entity>(&mut q, "o_");
    cols::<users::Entity>(&mut q, "u_");
    q.from(shared_links::Entity)
        .inner_join(
            project_rows::Entity,
            Expr::col((project_rows::Entity, project_rows::Column::Id))
                .equals((shared_links::Entity, shared_links::Column::ResourceId)),
        )
        .inner_join(
            organizations::Entity,
            Expr::col((organizations::Entity, organizations::Column::Id))
                .equals((shared_links::Entity, shared_links::Column::OrganizationId)),
        )
        .inner_join(
            users::Entity,
            Expr::col((users::Entity, users::Column::Id))
                .equals((shared_links::Entity, shared_links::Column::CreatedByUserId)),
        )
        .and_where(Expr::col((shared_links::Entity, shared_links::Column::Id)).eq(id));
    let Some(row) = db.query_one(&q).await? else {
        return Ok(None);
    };
    Ok(Some((
        shared_links::Model::from_query_result(&row, "l_")?,
        project_rows::Model::from_query_result(&row, "p_")?,
        organizations::Model::from_query_result(&row, "o_")?,
        users::Model::from_query_result(&row, "u_")?,
    )))
}
