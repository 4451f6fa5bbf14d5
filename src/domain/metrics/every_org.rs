//! The window totals of every organization at once, for the cross-organization benchmarks:
//! the same rollup rows and edge facts as one organization's answer ([`super::organization`]),
//! grouped by organization instead of filtered to one, so a few statements serve half a
//! million organizations. Each organization's [`Counts`] and [`ShareFunnel`] equal what its
//! own `growth` answer says for the same window.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

mod members;

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

/// What the benchmarks read of one organization for a window: the counters their metrics
/// divide (each equal to the field of the organization's own `growth` answer named beside
/// it) and its current member count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrgTotals {
    /// Signups of every source (the cohort; `Counts::signups`).
    pub signups: i64,
    /// `Counts::cohort_conversions`.
    pub cohort_conversions: i64,
    /// Invitations first sent (`inviteFunnel.sent`).
    pub sent: i64,
    /// Of those, accepted (`inviteFunnel.accepted`).
    pub accepted: i64,
    /// Of those, whose accepting user is activated (`inviteFunnel.activated`).
    pub activated: i64,
    /// SHARE signups through its links (`shareFunnel.signups`).
    pub share_signups: i64,
    /// Distinct visitors of its links (`shareFunnel.uniqueVisitors`).
    pub unique_visitors: i64,
    /// Members now; 0 for a removed organization (its rollup rows outlive it).
    pub members: u64,
}

impl OrgTotals {
    /// The counts part, as `growth` computes its ratios from it.
    pub fn counts(&self) -> Counts {
        Counts {
            by_source: [self.signups, 0, 0, 0, 0],
            cohort_conversions: self.cohort_conversions,
            sent: self.sent,
            accepted: self.accepted,
            activated: self.activated,
            ..Counts::default()
        }
    }

    /// The share funnel part (links and visits are not read).
    pub fn share(&self) -> ShareFunnel {
        ShareFunnel {
            signups: self.share_signups,
            unique_visitors: self.unique_visitors,
            ..ShareFunnel::default()
        }
    }

    fn add_row(&mut self, row: &[i64; 15]) {
        self.signups += row[col::SIGNUPS..col::SIGNUPS + 5].iter().sum::<i64>();
        self.cohort_conversions += row[col::COHORT_CONVERSIONS];
        self.sent += row[col::SENT];
        self.accepted += row[col::ACCEPTED];
        self.activated += row[col::ACTIVATED];
        self.share_signups += row[col::SHARE_SIGNUPS];
    }
}

/// An organization's totals while they are read: `members` is known once counted.
#[derive(Default)]
struct Partial {
    totals: OrgTotals,
    counted: bool,
}

type Out = HashMap<Uuid, Partial>;

/// The totals of `[from, to)` for every organization with any fact in it (an organization
/// missing from the map has none: all its counts are 0), with its member count. One
/// read-only snapshot.
pub async fn totals(
    svc: &Services,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<HashMap<Uuid, OrgTotals>> {
    let backend = svc.db.backend();
    let txn = super::snapshot(svc).await?;
    let span = Span::new(from, to);
    let w_ms = svc.config.attribution_window.num_milliseconds();
    let mut out = Out::new();
    let timed = |what: &'static str, t: std::time::Instant, rows: usize| {
        tracing::debug!(
            what,
            rows,
            ms = t.elapsed().as_millis() as u64,
            "benchmarks read"
        );
    };
    let t = std::time::Instant::now();
    days(&txn, &span, &mut out).await?;
    timed("growth_days", t, out.len());
    let t = std::time::Instant::now();
    edges(&txn, &Sql::new(backend), &span, w_ms, &mut out).await?;
    timed("edges", t, span.edges.len());
    let t = std::time::Instant::now();
    let n = visitors(&txn, &span, &mut out).await?;
    timed("visitors", t, n);
    let t = std::time::Instant::now();
    let n = members::of_the_rest(&txn, &mut out).await?;
    timed("members of the rest", t, n);
    let t = std::time::Instant::now();
    let n = members::removed(&txn, &mut out).await?;
    timed("removed", t, n);
    txn.rollback().await?;
    Ok(out.into_iter().map(|(k, p)| (k, p.totals)).collect())
}

/// The whole days, from `growth_days`, summed per organization in the database (only the
/// counters the benchmarks divide, the five signup sources as one sum), with each
/// organization's member count.
async fn days(db: &impl ConnectionTrait, span: &Span, out: &mut Out) -> DomainResult<()> {
    let Some((d1, d2)) = span.full.clone() else {
        return Ok(());
    };
    let signups = DAY_COLUMNS[col::SIGNUPS..col::SIGNUPS + 5].join(" + ");
    let members = members::of_group(db.get_database_backend());
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "SELECT g.scope_id, CAST(SUM({signups}) AS BIGINT), \
                   CAST(SUM(cohort_conversions) AS BIGINT), CAST(SUM(invitations_sent) AS BIGINT), \
                   CAST(SUM(invitations_accepted) AS BIGINT), \
                   CAST(SUM(invitations_activated) AS BIGINT), CAST(SUM(share_signups) AS BIGINT), \
                   {members} \
                 FROM growth_days g \
                 WHERE g.scope_id <> $1 AND g.day >= $2 AND g.day <= $3 GROUP BY g.scope_id"
            ),
            [PLATFORM.into(), d1.into(), d2.into()],
        ))
        .await?;
    out.reserve(rows.len());
    for row in rows {
        let v = |i: usize| -> DomainResult<i64> {
            Ok(row.try_get_by_index::<Option<i64>>(i)?.unwrap_or(0))
        };
        let t = &mut out.entry(row.try_get_by_index(0)?).or_default().totals;
        t.signups += v(1)?;
        t.cohort_conversions += v(2)?;
        t.sent += v(3)?;
        t.accepted += v(4)?;
        t.activated += v(5)?;
        t.share_signups += v(6)?;
        t.members = v(7)?.max(0) as u64;
    }
    // Every organization with a row now has its count (0: no membership left).
    for p in out.values_mut() {
        p.counted = true;
    }
    Ok(())
}

/// The partial first and last day, from the facts, grouped by organization.
async fn edges(
    db: &impl ConnectionTrait,
    sql: &Sql,
    span: &Span,
    w_ms: i64,
    out: &mut Out,
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
        out.entry(*scope).or_default().totals.add_row(row);
    }
    Ok(())
}

/// Distinct visitors per organization, as [`super::visitors::distinct`] counts them for one:
/// the whole days from the first-visit counts, the edges from the visit rows (visitors not
/// seen on any whole day).
async fn visitors(db: &impl ConnectionTrait, span: &Span, out: &mut Out) -> DomainResult<usize> {
    let mut n = 0;
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
        n += rows.len();
        for row in rows {
            out.entry(row.try_get_by_index(0)?)
                .or_default()
                .totals
                .unique_visitors += row.try_get_by_index::<Option<i64>>(1)?.unwrap_or(0);
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
        return Ok(n);
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
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    n += rows.len();
    for row in rows {
        out.entry(row.try_get_by_index(0)?)
            .or_default()
            .totals
            .unique_visitors += row.try_get_by_index::<i64>(1)?;
    }
    Ok(n)
}
