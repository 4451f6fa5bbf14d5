//! `kfactor metrics verify` and `kfactor metrics rebuild`: every rollup row recomputed from the
//! facts, compared with what is stored, or written anew (after a bulk load such as
//! `seed-demo`).
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use uuid::Uuid;

use super::{facts, sql::Sql, visitors};
use crate::{
    domain::{DomainResult, Services},
    rollups::{self, cycle_bucket, day_of, Cycle, Day, Rollup, DAY_COLUMNS},
};

/// Every rollup table.
pub const TABLES: [&str; 7] = [
    "growth_days",
    "growth_surface_days",
    "growth_inviter_days",
    "growth_visitor_days",
    "growth_visitor_firsts",
    "growth_cycles",
    "growth_cycle_days",
];

/// What the facts say the rollups must hold.
struct Expected {
    rollup: Rollup,
    visitor_days: std::collections::BTreeSet<(Uuid, String, Day)>,
}

async fn expected(db: &impl ConnectionTrait, svc: &Services) -> DomainResult<Expected> {
    let sql = Sql::new(svc.db.backend());
    let w = svc.config.attribution_window.num_milliseconds();
    let mut rollup = facts::everything(db, &sql, w, None).await?;
    let (visitor_days, firsts) = visitors::everything(db).await?;
    rollup.firsts = firsts.firsts;
    rollup.drop_zeros();
    Ok(Expected {
        rollup,
        visitor_days,
    })
}

fn histogram(cycles: &BTreeMap<(Uuid, Uuid), Option<Cycle>>) -> BTreeMap<(Uuid, Day, i32), i64> {
    let mut h = BTreeMap::new();
    for ((scope, _), c) in cycles {
        if let Some(c) = c {
            *h.entry((*scope, day_of(c.cohort_at), cycle_bucket(c.cycle_ms)))
                .or_default() += 1;
        }
    }
    h
}

async fn stored(
    db: &impl ConnectionTrait,
) -> DomainResult<(Rollup, BTreeMap<(Uuid, Day, i32), i64>)> {
    let backend = db.get_database_backend();
    let q = |sql: &str| Statement::from_string(backend, sql.to_string());
    let mut r = Rollup::default();
    let cols = DAY_COLUMNS.join(", ");
    for row in db
        .query_all_raw(q(&format!("SELECT scope_id, day, {cols} FROM growth_days")))
        .await?
    {
        let mut v = [0i64; 15];
        for (i, c) in DAY_COLUMNS.iter().enumerate() {
            v[i] = row.try_get("", c)?;
        }
        r.days
            .insert((row.try_get("", "scope_id")?, row.try_get("", "day")?), v);
    }
    for row in db
        .query_all_raw(q(
            "SELECT scope_id, day, surface, invitations_sent, links_created, viral_signups FROM growth_surface_days",
        ))
        .await?
    {
        r.surfaces.insert(
            (
                row.try_get("", "scope_id")?,
                row.try_get("", "day")?,
                row.try_get("", "surface")?,
            ),
            [
                row.try_get("", "invitations_sent")?,
                row.try_get("", "links_created")?,
                row.try_get("", "viral_signups")?,
            ],
        );
    }
    for row in db
        .query_all_raw(q(
            "SELECT scope_id, day, inviter_id, sent, accepted FROM growth_inviter_days",
        ))
        .await?
    {
        r.inviters.insert(
            (
                row.try_get("", "scope_id")?,
                row.try_get("", "day")?,
                row.try_get("", "inviter_id")?,
            ),
            [row.try_get("", "sent")?, row.try_get("", "accepted")?],
        );
    }
    for row in db
        .query_all_raw(q(
            "SELECT scope_id, day, prev_day, visitors FROM growth_visitor_firsts",
        ))
        .await?
    {
        r.firsts.insert(
            (
                row.try_get("", "scope_id")?,
                row.try_get("", "day")?,
                row.try_get("", "prev_day")?,
            ),
            row.try_get("", "visitors")?,
        );
    }
    for row in db
        .query_all_raw(q(
            "SELECT scope_id, invitee_id, inviter_id, cohort_at, cycle_ms FROM growth_cycles",
        ))
        .await?
    {
        let at: DateTime<Utc> = row.try_get("", "cohort_at")?;
        r.cycles.insert(
            (row.try_get("", "scope_id")?, row.try_get("", "invitee_id")?),
            Some(Cycle {
                inviter: row.try_get("", "inviter_id")?,
                cohort_at: at,
                cycle_ms: row.try_get("", "cycle_ms")?,
            }),
        );
    }
    let mut hist = BTreeMap::new();
    for row in db
        .query_all_raw(q(
            "SELECT scope_id, day, bucket, cycles FROM growth_cycle_days",
        ))
        .await?
    {
        let n: i64 = row.try_get("", "cycles")?;
        if n != 0 {
            hist.insert(
                (
                    row.try_get("", "scope_id")?,
                    row.try_get("", "day")?,
                    row.try_get("", "bucket")?,
                ),
                n,
            );
        }
    }
    r.drop_zeros();
    Ok((r, hist))
}

fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    what: &str,
    want: &BTreeMap<K, V>,
    have: &BTreeMap<K, V>,
    out: &mut Vec<String>,
) {
    for (k, v) in want {
        match have.get(k) {
            Some(h) if h == v => {}
            Some(h) => out.push(format!("{what} {k:?}: stored {h:?}, facts say {v:?}")),
            None => out.push(format!("{what} {k:?}: missing, facts say {v:?}")),
        }
    }
    for (k, h) in have {
        if !want.contains_key(k) {
            out.push(format!("{what} {k:?}: stored {h:?}, facts say nothing"));
        }
    }
}

/// Recomputes every rollup from the facts and lists every difference (empty: all equal).
pub async fn verify(svc: &Services) -> DomainResult<Vec<String>> {
    // One snapshot for both sides.
    let txn = svc.db.write.begin().await?;
    let want = expected(&txn, svc).await?;
    let (have, have_hist) = stored(&txn).await?;
    let have_days = visitors::stored(&txn).await?;
    txn.rollback().await?;
    let mut out = Vec::new();
    diff("day", &want.rollup.days, &have.days, &mut out);
    diff("surface", &want.rollup.surfaces, &have.surfaces, &mut out);
    diff("inviter", &want.rollup.inviters, &have.inviters, &mut out);
    diff(
        "visitor firsts",
        &want.rollup.firsts,
        &have.firsts,
        &mut out,
    );
    diff("cycle", &want.rollup.cycles, &have.cycles, &mut out);
    diff(
        "cycle histogram",
        &histogram(&want.rollup.cycles),
        &have_hist,
        &mut out,
    );
    for k in want.visitor_days.symmetric_difference(&have_days) {
        out.push(format!(
            "visitor day {k:?}: {}",
            if have_days.contains(k) {
                "stored, but no visit says so"
            } else {
                "missing"
            }
        ));
    }
    Ok(out)
}

/// Replaces every rollup with what the facts say, in one transaction.
pub async fn rebuild(svc: &Services) -> DomainResult<()> {
    let txn = svc.db.write.begin().await?;
    for t in TABLES {
        txn.execute_unprepared(&format!("DELETE FROM {t}")).await?;
    }
    let want = expected(&txn, svc).await?;
    let mut rows = want.rollup.clone();
    let cycles = std::mem::take(&mut rows.cycles);
    rollups::flush(&txn, &rows).await?;
    rollups::insert_cycles(&txn, &cycles).await?;
    visitors::store(&txn, &want.visitor_days).await?;
    txn.commit().await?;
    Ok(())
}
