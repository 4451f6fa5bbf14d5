//! One computation of the benchmarks of a window: every organization's values and, per size
//! bucket and metric, the sorted values of the organizations that contribute. Kept per window
//! for `KFACTOR_BENCHMARKS_CACHE_SECONDS` (per instance, at most [`MAX_WINDOWS`] windows),
//! computed by one request at a time, so a burst of dashboards costs one pass over the data;
//! while one request recomputes an expired window, the others get the expired computation
//! (at most twice the TTL old) instead of waiting. The windows the dashboard offers are kept
//! apart ([`Cache::keep`]): the precompute worker computes them ahead and refreshes them before
//! they expire ([`super::precompute`]), and custom windows never evict them.
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};
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
pub type Key = (DateTime<Utc>, DateTime<Utc>);

/// The snapshots of this instance, by window.
#[derive(Default)]
pub struct Cache {
    /// Windows computed on demand (at most [`MAX_WINDOWS`]).
    windows: Mutex<HashMap<Key, Arc<Snapshot>>>,
    /// Windows the precompute worker keeps computed (the dashboard's presets), never evicted
    /// by the others.
    kept: Mutex<HashMap<Key, Arc<Snapshot>>>,
    /// The windows the worker keeps now (a request computing one stores it there too).
    wanted: Mutex<Vec<Key>>,
    /// Held while computing, so concurrent misses wait for one computation.
    computing: tokio::sync::Mutex<()>,
    /// Wakes the precompute worker (its windows were dropped, or the clock jumped).
    wake: tokio::sync::Notify,
    /// Bumped by [`Cache::clear`]: a computation that started before is not stored (it may
    /// count an organization that opted out meanwhile).
    generation: AtomicU64,
}

fn usable(s: &Snapshot, now: DateTime<Utc>, ttl: chrono::Duration) -> bool {
    now < s.computed_at + ttl && s.computed_at <= now
}

impl Cache {
    fn fresh(&self, key: Key, now: DateTime<Utc>, ttl: chrono::Duration) -> Option<Arc<Snapshot>> {
        let kept = self.kept.lock().expect("cache lock").get(&key).cloned();
        let other = self.windows.lock().expect("cache lock").get(&key).cloned();
        // The newer of the two (a request may have computed a kept window the worker was
        // late to refresh).
        [kept, other]
            .into_iter()
            .flatten()
            .filter(|s| usable(s, now, ttl))
            .max_by_key(|s| s.computed_at)
    }

    /// The kept computation of `key`, however old (the precompute worker's view).
    pub fn kept(&self, key: Key) -> Option<Arc<Snapshot>> {
        self.kept.lock().expect("cache lock").get(&key).cloned()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Sets the windows to keep, forgetting the kept ones not among them.
    pub(super) fn want(&self, keys: &[Key]) {
        let mut kept = self.kept.lock().expect("cache lock");
        kept.retain(|k, _| keys.contains(k));
        *self.wanted.lock().expect("cache lock") = keys.to_vec();
    }

    /// Keeps `snap` as the computation of `key` (unless the cache was cleared since
    /// generation `started`).
    fn keep(&self, key: Key, snap: Arc<Snapshot>, started: u64) {
        let mut kept = self.kept.lock().expect("cache lock");
        if self.generation() != started {
            return;
        }
        kept.insert(key, snap);
        // One copy is enough: the kept one answers first.
        self.windows.lock().expect("cache lock").remove(&key);
    }

    /// Forgets every window (an organization opted in or out: it must (not) count at once)
    /// and wakes the precompute worker to compute its windows again.
    pub fn clear(&self) {
        // Under the `kept` lock, which storing holds too: a computation either stored before
        // (and is dropped here) or sees the new generation (and is not stored).
        let mut kept = self.kept.lock().expect("cache lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        kept.clear();
        self.windows.lock().expect("cache lock").clear();
        drop(kept);
        self.wake.notify_one();
    }

    /// Wakes the precompute worker now (tests move the clock past a refresh).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`Cache::wake`] or [`Cache::clear`] was called (one stored wake-up).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    fn insert(
        &self,
        key: Key,
        snap: Arc<Snapshot>,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
        started: u64,
    ) {
        let mut kept = self.kept.lock().expect("cache lock");
        if self.generation() != started {
            return;
        }
        if self.wanted.lock().expect("cache lock").contains(&key) {
            kept.insert(key, snap);
            return;
        }
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
    let started = cache.generation();
    let snap = Arc::new(compute(svc, from, to).await?);
    cache.insert((from, to), snap.clone(), svc.now(), ttl, started);
    Ok(snap)
}

/// Computes the window `key` now (one computation at a time, like a request's) and keeps it,
/// unless the kept one is `current` by then (a request computed it meanwhile). Returns how
/// long the computation took, `None` when there was none.
pub(super) async fn refresh(
    svc: &Services,
    key: Key,
    current: impl Fn(&Snapshot) -> bool,
) -> DomainResult<Option<std::time::Duration>> {
    let _one = svc.benchmarks.computing.lock().await;
    if svc.benchmarks.kept(key).is_some_and(|s| current(&s)) {
        return Ok(None);
    }
    let (started, generation) = (std::time::Instant::now(), svc.benchmarks.generation());
    let snap = Arc::new(compute(svc, key.0, key.1).await?);
    svc.benchmarks.keep(key, snap, generation);
    Ok(Some(started.elapsed()))
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
    let opted_out = opted_out(&svc.db.read).await?;
    let mut orgs = HashMap::new();
    let mut sorted: [[Vec<f64>; 4]; 5] = Default::default();
    for (org, t) in &totals {
        // Removed organizations (their rollup rows outlive them) have no members.
        if t.members == 0 {
            continue;
        }
        let values = Metric::ALL.map(|m| m.value(t));
        if values.iter().all(Option::is_none) {
            continue;
        }
        let bucket = SizeBucket::of(t.members);
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
