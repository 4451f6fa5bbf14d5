//! One computation of the benchmarks of a window: every organization's values and, per size
//! bucket and metric, the sorted values of the organizations that contribute. Kept per window
//! for `KFACTOR_BENCHMARKS_CACHE_SECONDS` (per instance, at most [`MAX_WINDOWS`] windows),
//! computed by one request at a time, so a burst of dashboards costs one pass over the data;
//! while one request recomputes an expired window, the others get the expired computation
//! (at most twice the TTL old) instead of waiting.
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect, Statement};
use uuid::Uuid;

use super::{Metric, SizeBucket};
use crate::domain::{metrics::every_org, DomainResult, Services};

/// Most windows kept at once (the dashboard's presets and a few custom ranges).
pub const MAX_WINDOWS: usize = 8;

/// One organization as the computation saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// Its size bucket then.
    pub bucket: SizeBucket,
    /// Its value of each metric, in [`Metric::ALL`] order (None: no denominator).
    pub values: [Option<f64>; 4],
    /// Whether it counted in its bucket's distributions (not opted out).
    pub contributes: bool,
}

/// The benchmarks of one window.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
    /// Every organization with at least one defined value.
    pub orgs: HashMap<Uuid, Entry>,
    /// Per bucket and metric, the contributing values, ascending.
    pub sorted: [[Vec<f64>; 4]; 5],
}

/// A window `[from, to)`.
type Key = (DateTime<Utc>, DateTime<Utc>);

/// The snapshots of this instance, by window.
#[derive(Default)]
pub struct Cache {
    windows: Mutex<HashMap<Key, Arc<Snapshot>>>,
    /// Held while computing, so concurrent misses wait for one computation.
    computing: tokio::sync::Mutex<()>,
}

impl Cache {
    fn fresh(&self, key: Key, now: DateTime<Utc>, ttl: chrono::Duration) -> Option<Arc<Snapshot>> {
        let windows = self.windows.lock().expect("cache lock");
        windows
            .get(&key)
            .filter(|s| now < s.computed_at + ttl && s.computed_at <= now)
            .cloned()
    }

    /// Forgets every window (an organization opted in or out: it must (not) count at once).
    pub fn clear(&self) {
        self.windows.lock().expect("cache lock").clear();
    }

    fn insert(&self, key: Key, snap: Arc<Snapshot>, now: DateTime<Utc>, ttl: chrono::Duration) {
        let mut windows = self.windows.lock().expect("cache lock");
        // Expired ones are kept up to twice the TTL: they answer while a recomputation runs.
        windows.retain(|_, s| now < s.computed_at + ttl + ttl);
        while windows.len() >= MAX_WINDOWS {
            let oldest = windows
                .iter()
                .min_by_key(|(_, s)| s.computed_at)
                .map(|(k, _)| *k)
                .expect("not empty");
            windows.remove(&oldest);
        }
        windows.insert(key, snap);
    }
}

/// The snapshot of `[from, to)`: from the cache while it is fresh, else computed now.
pub async fn get(
    svc: &Services,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<Arc<Snapshot>> {
    let ttl = svc.config.benchmarks_cache;
    let cache = &svc.benchmarks;
    if ttl <= chrono::Duration::zero() {
        return Ok(Arc::new(compute(svc, from, to).await?));
    }
    if let Some(s) = cache.fresh((from, to), svc.now(), ttl) {
        return Ok(s);
    }
    let _one = match cache.computing.try_lock() {
        Ok(one) => one,
        Err(_) => {
            // Another request is computing: while it does, an expired computation of this
            // window (up to twice the TTL old) answers instead of making everyone wait.
            if let Some(s) = cache.fresh((from, to), svc.now(), ttl + ttl) {
                return Ok(s);
            }
            cache.computing.lock().await
        }
    };
    // Another request may have computed it while this one waited.
    if let Some(s) = cache.fresh((from, to), svc.now(), ttl) {
        return Ok(s);
    }
    let snap = Arc::new(compute(svc, from, to).await?);
    cache.insert((from, to), snap.clone(), svc.now(), ttl);
    Ok(snap)
}

/// Computes the snapshot of `[from, to)` from the growth rollups, bypassing the cache.
pub async fn compute(
    svc: &Services,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<Snapshot> {
    let started = std::time::Instant::now();
    let computed_at = svc.now();
    let totals = every_org::totals(svc, from, to).await?;
    let members = member_counts(&svc.db.read).await?;
    let opted_out = opted_out(&svc.db.read).await?;
    let mut orgs = HashMap::new();
    let mut sorted: [[Vec<f64>; 4]; 5] = Default::default();
    for (org, t) in &totals {
        // Tombstones (removed organizations) have no members row left to count.
        let Some(n) = members.get(org) else { continue };
        let values = Metric::ALL.map(|m| m.value(t));
        if values.iter().all(Option::is_none) {
            continue;
        }
        let bucket = SizeBucket::of(*n);
        let contributes = !opted_out.contains(org);
        if contributes {
            for (i, v) in values.iter().enumerate() {
                if let Some(v) = v {
                    sorted[bucket as usize][i].push(*v);
                }
            }
        }
        orgs.insert(
            *org,
            Entry {
                bucket,
                values,
                contributes,
            },
        );
    }
    for list in sorted.iter_mut().flatten() {
        list.sort_by(f64::total_cmp);
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        organizations = orgs.len(),
        %from,
        %to,
        "benchmarks computed"
    );
    Ok(Snapshot {
        computed_at,
        orgs,
        sorted,
    })
}

/// Members per organization that is not removed.
async fn member_counts(db: &impl ConnectionTrait) -> DomainResult<HashMap<Uuid, u64>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT m.organization_id AS org, COUNT(*) AS n FROM memberships m \
             JOIN organizations o ON o.id = m.organization_id \
             WHERE o.deleted_at IS NULL GROUP BY m.organization_id",
        ))
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        out.insert(
            row.try_get("", "org")?,
            row.try_get::<i64>("", "n")?.max(0) as u64,
        );
    }
    Ok(out)
}

async fn opted_out(db: &impl ConnectionTrait) -> DomainResult<HashSet<Uuid>> {
    use entity::benchmark_opt_outs as b;
    let ids: Vec<Uuid> = b::Entity::find()
        .select_only()
        .column(b::Column::OrganizationId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}
