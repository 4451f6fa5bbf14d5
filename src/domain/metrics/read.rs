//! Answers a growth question from the rollups: whole UTC days of the window from the rollup
//! tables, the partial first and last day from the facts, so any `[from, to)` is exact.
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};
use uuid::Uuid;

use super::{
    facts::{self, Families},
    midnight,
    sql::{Mode, Params, Sql},
    visitors, InviterStat, SurfaceStat, TOP_INVITERS_MAX,
};
use crate::{
    domain::DomainResult,
    rollups::{cycle_bucket, day_of, Day, Rollup, DAY_COLUMNS, PLATFORM},
};

/// A window cut into its whole UTC days and the partial days around them.
pub(super) struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// First and last whole day.
    pub full: Option<(Day, Day)>,
    /// The parts of the window outside the whole days.
    pub edges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Span {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Span {
        let floor = |t: DateTime<Utc>| midnight(&day_of(t));
        let first = if floor(from) == from {
            from
        } else {
            floor(from) + Duration::days(1)
        };
        let end = floor(to);
        if first < end {
            let mut edges = Vec::new();
            if from < first {
                edges.push((from, first));
            }
            if end < to {
                edges.push((end, to));
            }
            Span {
                from,
                to,
                full: Some((day_of(first), day_of(end - Duration::days(1)))),
                edges,
            }
        } else {
            Span {
                from,
                to,
                full: None,
                edges: vec![(from, to)],
            }
        }
    }

    /// `col` within one of the edges, as SQL with its values bound from `$start` on: a
    /// constant false without edges (so no index is even opened).
    fn edge_clause(&self, col: &str, start: usize) -> (String, Vec<Value>) {
        if self.edges.is_empty() {
            return ("1 = 0".into(), Vec::new());
        }
        let mut parts = Vec::new();
        let mut values = Vec::new();
        for (i, (from, to)) in self.edges.iter().enumerate() {
            let n = start + 2 * i;
            parts.push(format!("({col} >= ${n} AND {col} < ${})", n + 1));
            values.push((*from).into());
            values.push((*to).into());
        }
        (format!("({})", parts.join(" OR ")), values)
    }

    fn days(&self) -> (Day, Day) {
        self.full
            .clone()
            .unwrap_or_else(|| ("9".into(), "0".into()))
    }
}

/// Who asks: the scope id of the rollup rows and the mode of the fact queries.
#[derive(Clone, Copy)]
pub(super) struct Who {
    pub scope: Uuid,
    pub mode: Mode,
}

fn org_filter(who: Who, col: &str, n: usize) -> String {
    if who.scope == PLATFORM {
        format!("${n} IS NOT NULL")
    } else {
        format!("{col} = ${n}")
    }
}

/// The additive counters of every day of the window.
pub(super) async fn days(
    db: &impl ConnectionTrait,
    sql: &Sql,
    who: Who,
    span: &Span,
    w_ms: i64,
    cohort: bool,
) -> DomainResult<BTreeMap<Day, [i64; 15]>> {
    let mut out: BTreeMap<Day, [i64; 15]> = BTreeMap::new();
    let (d1, d2) = span.days();
    let cols = DAY_COLUMNS.join(", ");
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "SELECT day, {cols} FROM growth_days WHERE scope_id = $1 AND day >= $2 AND day <= $3"
            ),
            [who.scope.into(), d1.into(), d2.into()],
        ))
        .await?;
    for row in rows {
        let e = out.entry(row.try_get("", "day")?).or_default();
        for (i, c) in DAY_COLUMNS.iter().enumerate() {
            e[i] += row.try_get::<i64>("", c)?;
        }
    }
    let fam = Families {
        days: true,
        cohort,
        surfaces: false,
        inviters: false,
        cycles: false,
    };
    let edge = measure_edges(db, sql, who, span, w_ms, fam).await?;
    for ((_, d), v) in edge.days {
        let e = out.entry(d).or_default();
        for (a, b) in e.iter_mut().zip(v) {
            *a += b;
        }
    }
    Ok(out)
}

/// The rollup rows of the partial days at the window's edges, straight from the facts.
async fn measure_edges(
    db: &impl ConnectionTrait,
    sql: &Sql,
    who: Who,
    span: &Span,
    w_ms: i64,
    fam: Families,
) -> DomainResult<Rollup> {
    let mut edge = Rollup::default();
    for (from, to) in &span.edges {
        let p = Params {
            from: *from,
            to: *to,
            w_ms,
            mode: who.mode,
            only: None,
        };
        facts::measure(db, sql, &p, fam, &mut edge).await?;
    }
    Ok(edge)
}

/// Surfaces of the window, most viral signups first, then by label.
pub(super) async fn surfaces(
    db: &impl ConnectionTrait,
    sql: &Sql,
    who: Who,
    span: &Span,
    w_ms: i64,
) -> DomainResult<Vec<SurfaceStat>> {
    let (d1, d2) = span.days();
    let mut by: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT surface, CAST(SUM(invitations_sent) AS BIGINT) AS i, \
                    CAST(SUM(links_created) AS BIGINT) AS l, CAST(SUM(viral_signups) AS BIGINT) AS s \
             FROM growth_surface_days WHERE scope_id = $1 AND day >= $2 AND day <= $3 GROUP BY surface",
            [who.scope.into(), d1.into(), d2.into()],
        ))
        .await?;
    for row in rows {
        let e = by.entry(row.try_get("", "surface")?).or_default();
        e[0] += row.try_get::<i64>("", "i")?;
        e[1] += row.try_get::<i64>("", "l")?;
        e[2] += row.try_get::<i64>("", "s")?;
    }
    let fam = Families {
        days: false,
        cohort: false,
        surfaces: true,
        inviters: false,
        cycles: false,
    };
    let edge = measure_edges(db, sql, who, span, w_ms, fam).await?;
    for ((_, _, s), v) in edge.surfaces {
        let e = by.entry(s).or_default();
        for (a, b) in e.iter_mut().zip(v) {
            *a += b;
        }
    }
    let mut all: Vec<SurfaceStat> = by
        .into_iter()
        .filter(|(_, v)| v.iter().any(|n| *n != 0))
        .map(|(surface, v)| SurfaceStat {
            surface,
            invitations_sent: v[0],
            shares_created: v[1],
            viral_signups: v[2],
        })
        .collect();
    all.sort_by(|a, b| {
        b.viral_signups
            .cmp(&a.viral_signups)
            .then_with(|| a.surface.cmp(&b.surface))
    });
    Ok(all)
}

/// The best inviters of the window, ranked in the database.
pub(super) async fn top_inviters(
    db: &impl ConnectionTrait,
    who: Who,
    span: &Span,
) -> DomainResult<Vec<InviterStat>> {
    let (d1, d2) = span.days();
    let (edges, edge_values) = span.edge_clause("created_at", 4);
    let sql = format!(
        "SELECT uid, CAST(SUM(sent) AS BIGINT) AS sent, CAST(SUM(acc) AS BIGINT) AS accepted FROM (
           SELECT inviter_id AS uid, sent, accepted AS acc FROM growth_inviter_days
             WHERE scope_id = $1 AND day >= $2 AND day <= $3
           UNION ALL
           SELECT first_sent_by_user_id, 1, CASE WHEN first_accepted_at IS NOT NULL THEN 1 ELSE 0 END
             FROM invitations WHERE {org} AND {edges}
         ) x GROUP BY uid ORDER BY 3 DESC, 2 DESC, 1 LIMIT {TOP_INVITERS_MAX}",
        org = org_filter(who, "organization_id", 1),
    );
    let mut values: Vec<Value> = vec![who.scope.into(), d1.into(), d2.into()];
    values.extend(edge_values);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(InviterStat {
            user_id: row.try_get("", "uid")?,
            invitations_sent: row.try_get("", "sent")?,
            accepted: row.try_get("", "accepted")?,
        });
    }
    Ok(out)
}

/// The exact median cycle in hours: a histogram of hour buckets finds the bucket(s) of the
/// middle value(s), whose exact values are then read from the cycle rows.
pub(super) async fn median_cycle_hours(
    db: &impl ConnectionTrait,
    who: Who,
    span: &Span,
) -> DomainResult<Option<f64>> {
    let backend = db.get_database_backend();
    let (d1, d2) = span.days();
    let mut hist: BTreeMap<i32, i64> = BTreeMap::new();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT bucket, CAST(SUM(cycles) AS BIGINT) AS n FROM growth_cycle_days \
             WHERE scope_id = $1 AND day >= $2 AND day <= $3 GROUP BY bucket",
            [who.scope.into(), d1.into(), d2.into()],
        ))
        .await?;
    for row in rows {
        *hist.entry(row.try_get("", "bucket")?).or_default() += row.try_get::<i64>("", "n")?;
    }
    if !span.edges.is_empty() {
        let (edges, edge_values) = span.edge_clause("cohort_at", 2);
        let mut values: Vec<Value> = vec![who.scope.into()];
        values.extend(edge_values);
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT bucket, COUNT(*) AS n FROM growth_cycles WHERE scope_id = $1 AND {edges} \
                     GROUP BY bucket"
                ),
                values,
            ))
            .await?;
        for row in rows {
            *hist.entry(row.try_get("", "bucket")?).or_default() += row.try_get::<i64>("", "n")?;
        }
    }
    let n: i64 = hist.values().sum();
    if n == 0 {
        return Ok(None);
    }
    // 1-based ranks of the middle value(s).
    let ranks = [(n + 1) / 2, (n + 2) / 2];
    let mut picked = Vec::with_capacity(2);
    for rank in ranks {
        let mut below = 0;
        for (bucket, count) in &hist {
            if below + count >= rank {
                let row = db
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT cycle_ms FROM growth_cycles WHERE scope_id = $1 AND bucket = $2 \
                           AND cohort_at >= $3 AND cohort_at < $4 \
                         ORDER BY cycle_ms LIMIT 1 OFFSET $5",
                        [
                            who.scope.into(),
                            (*bucket).into(),
                            span.from.into(),
                            span.to.into(),
                            (rank - below - 1).into(),
                        ],
                    ))
                    .await?;
                let ms: i64 = match row {
                    Some(r) => r.try_get("", "cycle_ms")?,
                    None => {
                        return Err(crate::domain::DomainError::Internal(anyhow::anyhow!(
                            "growth_cycle_days disagrees with growth_cycles; run `kfactor metrics verify`"
                        )))
                    }
                };
                debug_assert_eq!(cycle_bucket(ms), *bucket);
                picked.push(ms);
                break;
            }
            below += count;
        }
    }
    Ok(Some(
        picked.iter().map(|ms| *ms as f64).sum::<f64>() / picked.len() as f64 / 3_600_000.0,
    ))
}

/// Distinct visitors of the window.
pub(super) async fn unique_visitors(
    db: &impl ConnectionTrait,
    who: Who,
    span: &Span,
) -> DomainResult<i64> {
    visitors::distinct(db, who.scope, span.from, span.to, span.full.clone()).await
}
