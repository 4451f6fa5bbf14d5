//! Growth rollups as data: per (scope, UTC day) counters and their changes, and the SQL that
//! adds changes to the rollup tables. A leaf module: the outbox's transaction carries a
//! [`Rollup`] of changes and flushes it just before commit; `domain::metrics` computes the
//! changes and reads the tables.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use uuid::Uuid;

/// The scope id of platform rows.
pub const PLATFORM: Uuid = Uuid::nil();

/// The counters of a `growth_days` row, in column order.
pub const DAY_COLUMNS: [&str; 15] = [
    "signups_organic",
    "signups_invite",
    "signups_referral",
    "signups_share",
    "signups_paid",
    "cohort_invitations",
    "cohort_conversions",
    "cohort_shares",
    "invitations_sent",
    "invitations_opened",
    "invitations_accepted",
    "invitations_activated",
    "links_created",
    "visits",
    "share_signups",
];

/// Index of a counter in [`DAY_COLUMNS`].
#[allow(missing_docs)]
pub mod col {
    pub const SIGNUPS: usize = 0; // .. + source index (organic, invite, referral, share, paid)
    pub const COHORT_INVITATIONS: usize = 5;
    pub const COHORT_CONVERSIONS: usize = 6;
    pub const COHORT_SHARES: usize = 7;
    pub const SENT: usize = 8;
    pub const OPENED: usize = 9;
    pub const ACCEPTED: usize = 10;
    pub const ACTIVATED: usize = 11;
    pub const LINKS: usize = 12;
    pub const VISITS: usize = 13;
    pub const SHARE_SIGNUPS: usize = 14;
}

/// A day key: `YYYY-MM-DD` in UTC.
pub type Day = String;

/// The UTC day of an instant.
pub fn day_of(t: DateTime<Utc>) -> Day {
    t.format("%Y-%m-%d").to_string()
}

/// Hour buckets of the median's histogram.
pub fn cycle_bucket(cycle_ms: i64) -> i32 {
    (cycle_ms.max(0) / 3_600_000).min(i32::MAX as i64) as i32
}

/// One viral cycle: a signup credited to an inviter through a viral invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The credited inviter.
    pub inviter: Uuid,
    /// The inviter's signup (organization scope: joining).
    pub cohort_at: DateTime<Utc>,
    /// Invitee's signup minus `cohort_at`, in milliseconds.
    pub cycle_ms: i64,
}

/// Rollup rows (as measured from facts) or changes to them (as deltas).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    /// `growth_days` counters by (scope, day).
    pub days: BTreeMap<(Uuid, Day), [i64; 15]>,
    /// `growth_surface_days`: invitations, links, viral signups by (scope, day, surface).
    pub surfaces: BTreeMap<(Uuid, Day, String), [i64; 3]>,
    /// `growth_inviter_days`: sent, accepted by (scope, day, inviter).
    pub inviters: BTreeMap<(Uuid, Day, Uuid), [i64; 2]>,
    /// `growth_visitor_firsts` by (scope, day, previous visit day or "").
    pub firsts: BTreeMap<(Uuid, Day, Day), i64>,
    /// `growth_cycles` by (scope, invitee): `Some` to write, `None` to delete (deltas), or the
    /// rows present (measurements).
    pub cycles: BTreeMap<(Uuid, Uuid), Option<Cycle>>,
}

fn add<K: Ord + Clone, const N: usize>(
    into: &mut BTreeMap<K, [i64; N]>,
    from: &BTreeMap<K, [i64; N]>,
    sign: i64,
) {
    for (k, v) in from {
        let e = into.entry(k.clone()).or_insert([0; N]);
        for (a, b) in e.iter_mut().zip(v) {
            *a += sign * b;
        }
    }
}

impl Rollup {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
            && self.surfaces.is_empty()
            && self.inviters.is_empty()
            && self.firsts.is_empty()
            && self.cycles.is_empty()
    }

    /// Adds another set of changes to this one.
    pub fn merge(&mut self, o: &Rollup) {
        add(&mut self.days, &o.days, 1);
        add(&mut self.surfaces, &o.surfaces, 1);
        add(&mut self.inviters, &o.inviters, 1);
        for (k, v) in &o.firsts {
            *self.firsts.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.cycles {
            self.cycles.insert(*k, v.clone());
        }
    }

    /// The changes that turn the measurement `before` into `after`.
    pub fn change(before: &Rollup, after: &Rollup) -> Rollup {
        let mut d = Rollup::default();
        add(&mut d.days, &after.days, 1);
        add(&mut d.days, &before.days, -1);
        add(&mut d.surfaces, &after.surfaces, 1);
        add(&mut d.surfaces, &before.surfaces, -1);
        add(&mut d.inviters, &after.inviters, 1);
        add(&mut d.inviters, &before.inviters, -1);
        for (k, v) in &after.firsts {
            *d.firsts.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &before.firsts {
            *d.firsts.entry(k.clone()).or_default() -= v;
        }
        for (k, v) in &after.cycles {
            if before.cycles.get(k) != Some(v) {
                d.cycles.insert(*k, v.clone());
            }
        }
        for k in before.cycles.keys() {
            if !after.cycles.contains_key(k) {
                d.cycles.insert(*k, None);
            }
        }
        d.drop_zeros();
        d
    }

    /// Removes entries that change nothing.
    pub fn drop_zeros(&mut self) {
        self.days.retain(|_, v| v.iter().any(|n| *n != 0));
        self.surfaces.retain(|_, v| v.iter().any(|n| *n != 0));
        self.inviters.retain(|_, v| v.iter().any(|n| *n != 0));
        self.firsts.retain(|_, v| *v != 0);
    }
}

/// Most values bound in one statement.
const MAX_VALUES: usize = 20_000;

/// `(…), (…)` placeholders for `rows` rows of `cols` values. SQLite gets anonymous `?`:
/// binding a statement with many numbered parameters costs sqlite3 time quadratic in their
/// number (each name is found by a linear scan), which a bulk insert of thousands of values
/// turns into minutes.
pub fn placeholders(backend: sea_orm::DatabaseBackend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            if backend == sea_orm::DatabaseBackend::Sqlite {
                s.push('?');
            } else {
                s.push('$');
                s.push_str(&(r * cols + c + 1).to_string());
            }
        }
        s.push(')');
    }
    s
}

async fn upsert(
    db: &impl ConnectionTrait,
    table: &str,
    keys: &[&str],
    counters: &[&str],
    rows: Vec<Vec<Value>>,
) -> Result<(), DbErr> {
    let cols = keys.len() + counters.len();
    let per = (MAX_VALUES / cols).max(1);
    let set: Vec<String> = counters
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    let all: Vec<&str> = keys.iter().chain(counters).copied().collect();
    for chunk in rows.chunks(per) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
            all.join(", "),
            placeholders(db.get_database_backend(), chunk.len(), cols),
            keys.join(", "),
            set.join(", ")
        );
        let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Adds `delta` to the rollup tables. The `growth_days` rows of every (scope, day) the delta
/// touches are written first, in key order: their row locks serialize concurrent writers of
/// one day (PostgreSQL), whatever else the delta holds.
pub async fn flush(db: &impl ConnectionTrait, delta: &Rollup) -> Result<(), DbErr> {
    if delta.is_empty() {
        return Ok(());
    }
    let mut days = delta.days.clone();
    let touched = delta
        .surfaces
        .keys()
        .map(|(s, d, _)| (*s, d.clone()))
        .chain(delta.inviters.keys().map(|(s, d, _)| (*s, d.clone())))
        .chain(delta.firsts.keys().map(|(s, d, _)| (*s, d.clone())));
    for k in touched {
        days.entry(k).or_insert([0; 15]);
    }
    let rows = days
        .iter()
        .map(|((s, d), v)| {
            let mut row: Vec<Value> = vec![(*s).into(), d.clone().into()];
            row.extend(v.iter().map(|n| Value::from(*n)));
            row
        })
        .collect();
    upsert(db, "growth_days", &["scope_id", "day"], &DAY_COLUMNS, rows).await?;
    let rows = delta
        .surfaces
        .iter()
        .map(|((s, d, l), v)| {
            vec![
                (*s).into(),
                d.clone().into(),
                l.clone().into(),
                v[0].into(),
                v[1].into(),
                v[2].into(),
            ]
        })
        .collect();
    upsert(
        db,
        "growth_surface_days",
        &["scope_id", "day", "surface"],
        &["invitations_sent", "links_created", "viral_signups"],
        rows,
    )
    .await?;
    let rows = delta
        .inviters
        .iter()
        .map(|((s, d, i), v)| {
            vec![
                (*s).into(),
                d.clone().into(),
                (*i).into(),
                v[0].into(),
                v[1].into(),
            ]
        })
        .collect();
    upsert(
        db,
        "growth_inviter_days",
        &["scope_id", "day", "inviter_id"],
        &["sent", "accepted"],
        rows,
    )
    .await?;
    let rows = delta
        .firsts
        .iter()
        .map(|((s, d, p), n)| vec![(*s).into(), d.clone().into(), p.clone().into(), (*n).into()])
        .collect();
    upsert(
        db,
        "growth_visitor_firsts",
        &["scope_id", "day", "prev_day"],
        &["visitors"],
        rows,
    )
    .await?;
    flush_cycles(db, &delta.cycles).await
}

/// Writes or deletes cycle rows and moves their histogram counts with them.
async fn flush_cycles(
    db: &impl ConnectionTrait,
    cycles: &BTreeMap<(Uuid, Uuid), Option<Cycle>>,
) -> Result<(), DbErr> {
    if cycles.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let mut hist: BTreeMap<(Uuid, Day, i32), i64> = BTreeMap::new();
    for ((scope, invitee), new) in cycles {
        let old = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "DELETE FROM growth_cycles WHERE scope_id = $1 AND invitee_id = $2 \
                 RETURNING cohort_at, bucket",
                [(*scope).into(), (*invitee).into()],
            ))
            .await?;
        if let Some(row) = old {
            let at: DateTime<Utc> = row.try_get("", "cohort_at")?;
            let bucket: i32 = row.try_get("", "bucket")?;
            *hist.entry((*scope, day_of(at), bucket)).or_default() -= 1;
        }
        if let Some(c) = new {
            let bucket = cycle_bucket(c.cycle_ms);
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO growth_cycles (scope_id, invitee_id, inviter_id, cohort_at, cycle_ms, bucket) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (*scope).into(),
                    (*invitee).into(),
                    c.inviter.into(),
                    c.cohort_at.into(),
                    c.cycle_ms.into(),
                    bucket.into(),
                ],
            ))
            .await?;
            *hist
                .entry((*scope, day_of(c.cohort_at), bucket))
                .or_default() += 1;
        }
    }
    hist.retain(|_, n| *n != 0);
    add_cycle_days(db, hist).await
}

/// Adds a histogram change (scope, cohort day, hour bucket) → cycles to `growth_cycle_days`.
async fn add_cycle_days(
    db: &impl ConnectionTrait,
    hist: BTreeMap<(Uuid, Day, i32), i64>,
) -> Result<(), DbErr> {
    let rows = hist
        .into_iter()
        .map(|((s, d, b), n)| vec![s.into(), d.into(), b.into(), n.into()])
        .collect();
    upsert(
        db,
        "growth_cycle_days",
        &["scope_id", "day", "bucket"],
        &["cycles"],
        rows,
    )
    .await
}

/// Writes cycle rows into an empty `growth_cycles` with their histogram (rebuilds).
pub async fn insert_cycles(
    db: &impl ConnectionTrait,
    cycles: &BTreeMap<(Uuid, Uuid), Option<Cycle>>,
) -> Result<(), DbErr> {
    let rows: Vec<(&(Uuid, Uuid), &Cycle)> = cycles
        .iter()
        .filter_map(|(k, c)| c.as_ref().map(|c| (k, c)))
        .collect();
    let mut hist: BTreeMap<(Uuid, Day, i32), i64> = BTreeMap::new();
    for chunk in rows.chunks(MAX_VALUES / 6) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
        for ((scope, invitee), c) in chunk {
            let bucket = cycle_bucket(c.cycle_ms);
            *hist
                .entry((*scope, day_of(c.cohort_at), bucket))
                .or_default() += 1;
            values.extend([
                Value::from(*scope),
                (*invitee).into(),
                c.inviter.into(),
                c.cohort_at.into(),
                c.cycle_ms.into(),
                bucket.into(),
            ]);
        }
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "INSERT INTO growth_cycles (scope_id, invitee_id, inviter_id, cohort_at, cycle_ms, bucket) VALUES {}",
                placeholders(db.get_database_backend(), chunk.len(), 6)
            ),
            values,
        ))
        .await?;
    }
    add_cycle_days(db, hist).await
}
