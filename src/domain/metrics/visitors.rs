//! Distinct visitors over any window, without counting them visit by visit.
//!
//! `growth_visitor_days` holds the UTC days each visitor id opened a link of a scope. For a run
//! of whole days, the distinct visitors are those whose previous visit day lies before the run:
//! `growth_visitor_firsts` counts the visitors of each day by the day of their previous visit,
//! so a run of days is one indexed sum. The partial first and last day of a window come from
//! the visit rows themselves.
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};
use uuid::Uuid;

use crate::{
    domain::{
        ids::{OrgId, SharedLinkId},
        DomainResult,
    },
    rollups::{placeholders, Day, Rollup},
};

/// A scope and a visitor id.
pub type Visitor = (Uuid, String);

/// The firsts a visitor with these (sorted) days contributes: each day with the one before.
fn contributions(scope: Uuid, days: &BTreeSet<Day>, sign: i64, out: &mut Rollup) {
    let mut prev = String::new();
    for d in days {
        *out.firsts
            .entry((scope, d.clone(), prev.clone()))
            .or_default() += sign;
        prev = d.clone();
    }
}

/// On PostgreSQL, one transaction at a time per (scope, visitor): the days read and the days
/// written must not interleave with another instance's batch. Keys are taken in order.
async fn lock(db: &impl ConnectionTrait, visitors: &BTreeSet<Visitor>) -> DomainResult<()> {
    if db.get_database_backend() != DatabaseBackend::Postgres || visitors.is_empty() {
        return Ok(());
    }
    let keys: Vec<i64> = visitors
        .iter()
        .map(|(s, v)| super::lock_key(&[s.as_bytes(), v.as_bytes()]))
        .collect();
    super::advisory_locks(db, keys).await?;
    Ok(())
}

/// The stored days of some visitors.
async fn stored_days(
    db: &impl ConnectionTrait,
    visitors: &BTreeSet<Visitor>,
) -> DomainResult<BTreeMap<Visitor, BTreeSet<Day>>> {
    let mut out: BTreeMap<Visitor, BTreeSet<Day>> = BTreeMap::new();
    let list: Vec<&Visitor> = visitors.iter().collect();
    for chunk in list.chunks(2000) {
        let sql = format!(
            "SELECT scope_id, visitor_id, day FROM growth_visitor_days \
             WHERE (scope_id, visitor_id) IN ({})",
            placeholders(db.get_database_backend(), chunk.len(), 2)
        );
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(s, v)| [Value::from(*s), Value::from(v.clone())])
            .collect();
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                sql,
                values,
            ))
            .await?;
        for row in rows {
            let key = (row.try_get("", "scope_id")?, row.try_get("", "visitor_id")?);
            out.entry(key).or_default().insert(row.try_get("", "day")?);
        }
    }
    Ok(out)
}

async fn write_days(
    db: &impl ConnectionTrait,
    add: &[(Uuid, String, Day)],
    remove: &[(Uuid, String, Day)],
) -> DomainResult<()> {
    let backend = db.get_database_backend();
    for chunk in add.chunks(3000) {
        let sql = format!(
            "INSERT INTO growth_visitor_days (scope_id, visitor_id, day) VALUES {} \
             ON CONFLICT DO NOTHING",
            placeholders(backend, chunk.len(), 3)
        );
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(s, v, d)| [Value::from(*s), v.clone().into(), d.clone().into()])
            .collect();
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    for chunk in remove.chunks(3000) {
        let sql = format!(
            "DELETE FROM growth_visitor_days WHERE (scope_id, visitor_id, day) IN ({})",
            placeholders(backend, chunk.len(), 3)
        );
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(s, v, d)| [Value::from(*s), v.clone().into(), d.clone().into()])
            .collect();
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// The visitors of some links' visits, on the platform and in each visit's organization:
/// whose days change when those visits are deleted or move.
pub async fn of_links(
    db: &impl ConnectionTrait,
    links: &[SharedLinkId],
) -> DomainResult<BTreeSet<Visitor>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let mut out = BTreeSet::new();
    for chunk in links.chunks(1000) {
        let rows: Vec<(OrgId, String)> = entity::link_visits::Entity::find()
            .select_only()
            .column(entity::link_visits::Column::OrganizationId)
            .column(entity::link_visits::Column::VisitorId)
            .distinct()
            .filter(entity::link_visits::Column::SharedLinkId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        for (org, v) in rows {
            out.insert((crate::rollups::PLATFORM, v.clone()));
            out.insert((org.0, v));
        }
    }
    Ok(out)
}

/// Records the days of new visits, given as (scope, visitor, day) for the platform and for
/// the link's organization, and returns the firsts they change (a visit on a day already
/// recorded changes nothing; a day before recorded ones moves their predecessor).
pub async fn visited(
    db: &impl ConnectionTrait,
    seen: &BTreeSet<(Uuid, String, Day)>,
) -> DomainResult<Rollup> {
    let visitors: BTreeSet<Visitor> = seen.iter().map(|(s, v, _)| (*s, v.clone())).collect();
    lock(db, &visitors).await?;
    let before = stored_days(db, &visitors).await?;
    let mut out = Rollup::default();
    let mut add = Vec::new();
    for (visitor, days) in group(seen) {
        let old = before.get(&visitor).cloned().unwrap_or_default();
        let mut new = old.clone();
        new.extend(days.iter().cloned());
        if new.len() == old.len() {
            continue;
        }
        contributions(visitor.0, &old, -1, &mut out);
        contributions(visitor.0, &new, 1, &mut out);
        for d in new.difference(&old) {
            add.push((visitor.0, visitor.1.clone(), d.clone()));
        }
    }
    write_days(db, &add, &[]).await?;
    out.drop_zeros();
    Ok(out)
}

fn group(seen: &BTreeSet<(Uuid, String, Day)>) -> BTreeMap<Visitor, BTreeSet<Day>> {
    let mut m: BTreeMap<Visitor, BTreeSet<Day>> = BTreeMap::new();
    for (s, v, d) in seen {
        m.entry((*s, v.clone())).or_default().insert(d.clone());
    }
    m
}

/// The days the visit rows say each visitor opened a link of each scope: the platform, and
/// organization `org` (or each visit's own organization when `None`).
async fn days_from_visits(
    db: &impl ConnectionTrait,
    visitors: &BTreeSet<Visitor>,
) -> DomainResult<BTreeMap<Visitor, BTreeSet<Day>>> {
    let backend = db.get_database_backend();
    let day = match backend {
        DatabaseBackend::Sqlite => "substr(created_at, 1, 10)",
        _ => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    };
    let ids: BTreeSet<&String> = visitors.iter().map(|(_, v)| v).collect();
    let mut out: BTreeMap<Visitor, BTreeSet<Day>> = BTreeMap::new();
    let ids: Vec<&String> = ids.into_iter().collect();
    for chunk in ids.chunks(2000) {
        let sql = format!(
            "SELECT DISTINCT organization_id, visitor_id, {day} AS d FROM link_visits \
             WHERE visitor_id IN ({})",
            placeholders(backend, chunk.len(), 1)
        );
        let values: Vec<Value> = chunk.iter().map(|v| Value::from((*v).clone())).collect();
        for row in db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let org: Uuid = row.try_get("", "organization_id")?;
            let v: String = row.try_get("", "visitor_id")?;
            let d: String = row.try_get("", "d")?;
            for scope in [crate::rollups::PLATFORM, org] {
                let key = (scope, v.clone());
                if visitors.contains(&key) {
                    out.entry(key).or_default().insert(d.clone());
                }
            }
        }
    }
    Ok(out)
}

/// After visit rows were deleted or moved between organizations: brings the stored days of
/// these visitors back in line with the visit rows, and returns the firsts that changes.
pub async fn repair(
    db: &impl ConnectionTrait,
    visitors: &BTreeSet<Visitor>,
) -> DomainResult<Rollup> {
    lock(db, visitors).await?;
    let stored = stored_days(db, visitors).await?;
    let actual = days_from_visits(db, visitors).await?;
    let empty = BTreeSet::new();
    let mut out = Rollup::default();
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for visitor in visitors {
        let old = stored.get(visitor).unwrap_or(&empty);
        let new = actual.get(visitor).unwrap_or(&empty);
        if old == new {
            continue;
        }
        contributions(visitor.0, old, -1, &mut out);
        contributions(visitor.0, new, 1, &mut out);
        for d in new.difference(old) {
            add.push((visitor.0, visitor.1.clone(), d.clone()));
        }
        for d in old.difference(new) {
            remove.push((visitor.0, visitor.1.clone(), d.clone()));
        }
    }
    write_days(db, &add, &remove).await?;
    out.drop_zeros();
    Ok(out)
}

/// Distinct visitors of `scope` in `[from, to)`: `full` is the run of whole days inside the
/// window (first and last, possibly empty), the rest comes from the visit rows.
pub async fn distinct(
    db: &impl ConnectionTrait,
    scope: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    full: Option<(Day, Day)>,
) -> DomainResult<i64> {
    let backend = db.get_database_backend();
    let mut total = 0;
    let (d1, d2) = full.clone().unwrap_or_else(|| ("9".into(), "0".into()));
    if full.is_some() {
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "SELECT CAST(COALESCE(SUM(visitors), 0) AS BIGINT) AS n FROM growth_visitor_firsts \
                 WHERE scope_id = $1 AND day >= $2 AND day <= $3 AND prev_day < $2",
                [scope.into(), d1.clone().into(), d2.clone().into()],
            ))
            .await?;
        total += row.map_or(Ok(0), |r| r.try_get::<i64>("", "n"))?;
    }
    // Visits outside the whole days, by visitors not seen on any of them.
    let edges: Vec<(DateTime<Utc>, DateTime<Utc>)> = match &full {
        Some((a, b)) => [(from, super::midnight(a)), (super::next_midnight(b), to)]
            .into_iter()
            .filter(|(x, y)| x < y)
            .collect(),
        None => vec![(from, to)],
    };
    if edges.is_empty() {
        return Ok(total);
    }
    let mut values: Vec<Value> = vec![scope.into(), d1.into(), d2.into()];
    let mut ranges = Vec::new();
    for (a, b) in edges {
        let n = values.len() + 1;
        ranges.push(format!("(created_at >= ${n} AND created_at < ${})", n + 1));
        values.push(a.into());
        values.push(b.into());
    }
    let org = if scope == crate::rollups::PLATFORM {
        "$1 IS NOT NULL"
    } else {
        "organization_id = $1"
    };
    let sql = format!(
        "SELECT COUNT(*) AS n FROM (SELECT DISTINCT visitor_id FROM link_visits \
           WHERE {org} AND ({})) e \
         WHERE NOT EXISTS (SELECT 1 FROM growth_visitor_days g WHERE g.scope_id = $1 \
           AND g.visitor_id = e.visitor_id AND g.day >= $2 AND g.day <= $3)",
        ranges.join(" OR ")
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    total += row.map_or(Ok(0), |r| r.try_get::<i64>("", "n"))?;
    Ok(total)
}

/// Every visitor day and the firsts they make, from the visit rows (for `metrics verify`).
pub async fn everything(
    db: &impl ConnectionTrait,
) -> DomainResult<(BTreeSet<(Uuid, String, Day)>, Rollup)> {
    let backend = db.get_database_backend();
    let day = match backend {
        DatabaseBackend::Sqlite => "substr(created_at, 1, 10)",
        _ => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    };
    let mut seen = BTreeSet::new();
    for row in db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT DISTINCT organization_id, visitor_id, {day} AS d FROM link_visits"),
        ))
        .await?
    {
        let org: Uuid = row.try_get("", "organization_id")?;
        let v: String = row.try_get("", "visitor_id")?;
        let d: String = row.try_get("", "d")?;
        seen.insert((crate::rollups::PLATFORM, v.clone(), d.clone()));
        seen.insert((org, v, d));
    }
    let mut out = Rollup::default();
    for (visitor, days) in group(&seen) {
        contributions(visitor.0, &days, 1, &mut out);
    }
    Ok((seen, out))
}

/// The stored visitor days (for `metrics verify`).
pub async fn stored(db: &impl ConnectionTrait) -> DomainResult<BTreeSet<(Uuid, String, Day)>> {
    let mut out = BTreeSet::new();
    for row in db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT scope_id, visitor_id, day FROM growth_visitor_days",
        ))
        .await?
    {
        out.insert((
            row.try_get("", "scope_id")?,
            row.try_get("", "visitor_id")?,
            row.try_get("", "day")?,
        ));
    }
    Ok(out)
}

/// Writes visitor days in bulk (rebuilds).
pub async fn store(
    db: &impl ConnectionTrait,
    seen: &BTreeSet<(Uuid, String, Day)>,
) -> DomainResult<()> {
    let all: Vec<(Uuid, String, Day)> = seen.iter().cloned().collect();
    write_days(db, &all, &[]).await
}
