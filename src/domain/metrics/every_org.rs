//! The window totals of every organization at once, for the cross-organization benchmarks:
//! the same rollup rows and edge facts as one organization's answer ([`super::organization`]),
//! grouped by organization instead of filtered to one, so a few statements serve half a
//! million organizations. Each organization's [`Counts`] and [`ShareFunnel`] equal what its
//! own `growth` answer says for the same window.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

use super::{
    facts::{self, Families},
    midnight, next_midnight,
    read::Span,
    sql::{Mode, Params, Sql},
    Counts, ShareFunnel,
};
use crate::{
    domain::{DomainResult, Services},
    rollups::{col, DAY_COLUMNS, PLATFORM},
};

/// One organization's totals of a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrgTotals {
    /// The additive counts (cohort, invitations, funnel).
    pub counts: Counts,
    /// The share funnel.
    pub share: ShareFunnel,
}

/// The totals of `[from, to)` for every organization with any fact in it (an organization
/// missing from the map has none: all its counts are 0). One read-only snapshot.
pub async fn totals(
    svc: &Services,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<HashMap<Uuid, OrgTotals>> {
    let backend = svc.db.backend();
    let txn = super::snapshot(svc).await?;
    let span = Span::new(from, to);
    let w_ms = svc.config.attribution_window.num_milliseconds();
    let mut out: HashMap<Uuid, OrgTotals> = HashMap::new();
    days(&txn, &span, &mut out).await?;
    edges(&txn, &Sql::new(backend), &span, w_ms, &mut out).await?;
    visitors(&txn, &span, &mut out).await?;
    txn.rollback().await?;
    Ok(out)
}

fn add_row(t: &mut OrgTotals, row: &[i64; 15]) {
    t.counts.add(&Counts::from_row(row));
    t.share.links_created += row[col::LINKS];
    t.share.visits += row[col::VISITS];
    t.share.signups += row[col::SHARE_SIGNUPS];
}

/// The whole days, from `growth_days`, summed per organization in the database.
async fn days(
    db: &impl ConnectionTrait,
    span: &Span,
    out: &mut HashMap<Uuid, OrgTotals>,
) -> DomainResult<()> {
    let Some((d1, d2)) = span.full.clone() else {
        return Ok(());
    };
    let sums = DAY_COLUMNS
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "SELECT scope_id, {sums} FROM growth_days \
                 WHERE scope_id <> $1 AND day >= $2 AND day <= $3 GROUP BY scope_id"
            ),
            [PLATFORM.into(), d1.into(), d2.into()],
        ))
        .await?;
    for row in rows {
        let mut v = [0i64; 15];
        for (i, c) in DAY_COLUMNS.iter().enumerate() {
            v[i] = row.try_get::<Option<i64>>("", c)?.unwrap_or(0);
        }
        add_row(out.entry(row.try_get("", "scope_id")?).or_default(), &v);
    }
    Ok(())
}

/// The partial first and last day, from the facts, grouped by organization.
async fn edges(
    db: &impl ConnectionTrait,
    sql: &Sql,
    span: &Span,
    w_ms: i64,
    out: &mut HashMap<Uuid, OrgTotals>,
) -> DomainResult<()> {
    let fam = Families {
        days: true,
        cohort: true,
        surfaces: false,
        inviters: false,
        cycles: false,
    };
    let mut edge = crate::rollups::Rollup::default();
    for (from, to) in &span.edges {
        let p = Params {
            from: *from,
            to: *to,
            w_ms,
            mode: Mode::Orgs,
            only: None,
        };
        facts::measure(db, sql, &p, fam, &mut edge).await?;
    }
    for ((scope, _), row) in &edge.days {
        add_row(out.entry(*scope).or_default(), row);
    }
    Ok(())
}

/// Distinct visitors per organization, as [`super::visitors::distinct`] counts them for one:
/// the whole days from the first-visit counts, the edges from the visit rows (visitors not
/// seen on any whole day).
async fn visitors(
    db: &impl ConnectionTrait,
    span: &Span,
    out: &mut HashMap<Uuid, OrgTotals>,
) -> DomainResult<()> {
    let backend = db.get_database_backend();
    let full = span.full.clone();
    let (d1, d2) = full.clone().unwrap_or_else(|| ("9".into(), "0".into()));
    if full.is_some() {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                "SELECT scope_id, CAST(SUM(visitors) AS BIGINT) AS n FROM growth_visitor_firsts \
                 WHERE scope_id <> $1 AND day >= $2 AND day <= $3 AND prev_day < $2 \
                 GROUP BY scope_id",
                [PLATFORM.into(), d1.clone().into(), d2.clone().into()],
            ))
            .await?;
        for row in rows {
            out.entry(row.try_get("", "scope_id")?)
                .or_default()
                .share
                .unique_visitors += row.try_get::<Option<i64>>("", "n")?.unwrap_or(0);
        }
    }
    let edges: Vec<(DateTime<Utc>, DateTime<Utc>)> = match &full {
        Some((a, b)) => [(span.from, midnight(a)), (next_midnight(b), span.to)]
            .into_iter()
            .filter(|(x, y)| x < y)
            .collect(),
        None => vec![(span.from, span.to)],
    };
    if edges.is_empty() {
        return Ok(());
    }
    let mut values: Vec<sea_orm::Value> = vec![d1.into(), d2.into()];
    let mut ranges = Vec::new();
    for (a, b) in edges {
        let n = values.len() + 1;
        ranges.push(format!("(created_at >= ${n} AND created_at < ${})", n + 1));
        values.push(a.into());
        values.push(b.into());
    }
    let sql = format!(
        "SELECT organization_id, COUNT(*) AS n FROM (SELECT DISTINCT organization_id, visitor_id \
           FROM link_visits WHERE {}) e \
         WHERE NOT EXISTS (SELECT 1 FROM growth_visitor_days g WHERE g.scope_id = e.organization_id \
           AND g.visitor_id = e.visitor_id AND g.day >= $1 AND g.day <= $2) \
         GROUP BY organization_id",
        ranges.join(" OR ")
    );
    for row in db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        out.entry(row.try_get("", "organization_id")?)
            .or_default()
            .share
            .unique_visitors += row.try_get::<i64>("", "n")?;
    }
    Ok(())
}
