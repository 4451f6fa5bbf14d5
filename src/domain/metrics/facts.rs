//! The growth facts aggregated per (scope, UTC day), computed from the stored facts by SQL:
//! the definition of every rollup row. The same statements answer the partial first and last
//! day of a window, recompute everything for `metrics verify`, and measure what one operation
//! changes (restricted to the facts it touches, before and after).
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult};
use uuid::Uuid;

use super::{
    sql::{Mode, Only, Params, Sql},
    SOURCES,
};
use crate::{
    domain::{DomainError, DomainResult},
    rollups::{col, Cycle, Rollup},
};

/// Which families of rows to compute.
#[derive(Clone, Copy, Debug)]
pub struct Families {
    /// `growth_days` counters.
    pub days: bool,
    /// Cohort counters (part of `days`, the most expensive statements).
    pub cohort: bool,
    /// `growth_surface_days`.
    pub surfaces: bool,
    /// `growth_inviter_days`.
    pub inviters: bool,
    /// `growth_cycles`.
    pub cycles: bool,
}

impl Families {
    /// Everything.
    pub const ALL: Families = Families {
        days: true,
        cohort: true,
        surfaces: true,
        inviters: true,
        cycles: true,
    };
}

/// Statements for one mode: each yields `scope, d, …`.
mod templates {
    use super::Mode;

    pub fn signups(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, {day:u.created_at} AS d, u.acquisition_source AS src, COUNT(*) AS n
                 FROM users u
                 WHERE u.created_at >= :from AND u.created_at < :to AND {r:users=u.id}
                 GROUP BY 2, 3"
            }
            _ => {
                "SELECT m.organization_id AS scope, {day:m.joined_at} AS d, u.acquisition_source AS src, COUNT(*) AS n
                 FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE {org:m.organization_id} AND m.joined_at >= :from AND m.joined_at < :to
                   AND {r:users=m.user_id,members=m.user_id}
                 GROUP BY 1, 2, 3"
            }
        }
    }

    /// Viral invitations a cohort member first sent within W of their start, and those whose
    /// invitee signed up through them within W of the send.
    pub fn cohort_invitations(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, {day:u.created_at} AS d, COUNT(*) AS invitations, COUNT(v.id) AS conversions
                 FROM users u
                 JOIN invitations i ON i.first_sent_by_user_id = u.id
                 LEFT JOIN users v ON v.invite_token_id = i.id AND v.acquisition_source = 'invite'
                      AND {ms:v.created_at} < {ms:i.created_at} + :w
                 WHERE u.created_at >= :from AND u.created_at < :to
                   AND i.team_invite = FALSE AND i.created_at >= u.created_at
                   AND {ms:i.created_at} < {ms:u.created_at} + :w
                   AND {r:invitations=i.id,members=u.id}
                 GROUP BY 2"
            }
            _ => {
                "SELECT m.organization_id AS scope, {day:m.joined_at} AS d, COUNT(*) AS invitations, COUNT(v.id) AS conversions
                 FROM memberships m
                 JOIN invitations i ON i.first_sent_by_user_id = m.user_id
                      AND i.organization_id = m.organization_id
                 LEFT JOIN users v ON v.invite_token_id = i.id AND v.acquisition_source = 'invite'
                      AND {ms:v.created_at} < {ms:i.created_at} + :w
                 WHERE {org:m.organization_id} AND m.joined_at >= :from AND m.joined_at < :to
                   AND i.team_invite = FALSE AND i.created_at >= m.joined_at
                   AND {ms:i.created_at} < {ms:m.joined_at} + :w
                   AND {r:invitations=i.id,members=m.user_id}
                 GROUP BY 1, 2"
            }
        }
    }

    /// SHARE and REFERRAL signups credited to a cohort member within W of their start
    /// (organization scope: credited to that organization).
    pub fn cohort_shares(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, {day:u.created_at} AS d, COUNT(*) AS n
                 FROM users u JOIN users v ON v.invited_by_user_id = u.id
                 WHERE u.created_at >= :from AND u.created_at < :to
                   AND v.acquisition_source IN ('share', 'referral')
                   AND v.created_at >= u.created_at
                   AND {ms:v.created_at} < {ms:u.created_at} + :w
                   AND {r:users=v.id,members=u.id}
                 GROUP BY 2"
            }
            _ => {
                "SELECT m.organization_id AS scope, {day:m.joined_at} AS d, COUNT(*) AS n
                 FROM memberships m
                 JOIN users v ON v.invited_by_user_id = m.user_id
                      AND v.attributed_organization_id = m.organization_id
                 WHERE {org:m.organization_id} AND m.joined_at >= :from AND m.joined_at < :to
                   AND v.acquisition_source IN ('share', 'referral')
                   AND v.created_at >= m.joined_at
                   AND {ms:v.created_at} < {ms:m.joined_at} + :w
                   AND {r:users=v.id,members=m.user_id}
                 GROUP BY 1, 2"
            }
        }
    }

    /// Invitations by the day of their first send, and how far each got (at any time).
    pub fn invitations(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, {day:i.created_at} AS d, COUNT(*) AS sent,
                    SUM(CASE WHEN i.first_opened_at IS NOT NULL OR i.first_accepted_at IS NOT NULL
                        THEN 1 ELSE 0 END) AS opened,
                    SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted,
                    SUM(CASE WHEN a.activated_at IS NOT NULL THEN 1 ELSE 0 END) AS activated
                 FROM invitations i LEFT JOIN users a ON a.id = i.first_accepted_by_user_id
                 WHERE i.created_at >= :from AND i.created_at < :to
                   AND {r:invitations=i.id,accepted_by=i.first_accepted_by_user_id}
                 GROUP BY 2"
            }
            _ => {
                "SELECT i.organization_id AS scope, {day:i.created_at} AS d, COUNT(*) AS sent,
                    SUM(CASE WHEN i.first_opened_at IS NOT NULL OR i.first_accepted_at IS NOT NULL
                        THEN 1 ELSE 0 END) AS opened,
                    SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted,
                    SUM(CASE WHEN a.activated_at IS NOT NULL THEN 1 ELSE 0 END) AS activated
                 FROM invitations i LEFT JOIN users a ON a.id = i.first_accepted_by_user_id
                 WHERE {org:i.organization_id} AND i.created_at >= :from AND i.created_at < :to
                   AND {r:invitations=i.id,accepted_by=i.first_accepted_by_user_id}
                 GROUP BY 1, 2"
            }
        }
    }

    /// Links created, link opens and SHARE signups, by day.
    pub fn shares(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, d, CAST(SUM(links) AS BIGINT) AS links, CAST(SUM(visits) AS BIGINT) AS visits,
                    CAST(SUM(signups) AS BIGINT) AS signups FROM (
                   SELECT {day:created_at} AS d, COUNT(*) AS links, 0 AS visits, 0 AS signups
                     FROM shared_links WHERE created_at >= :from AND created_at < :to AND {r:links=id}
                     GROUP BY 1
                   UNION ALL
                   SELECT {day:created_at}, 0, COUNT(*), 0
                     FROM link_visits WHERE created_at >= :from AND created_at < :to
                       AND {r:links=shared_link_id}
                     GROUP BY 1
                   UNION ALL
                   SELECT {day:created_at}, 0, 0, COUNT(*)
                     FROM users WHERE acquisition_source = 'share'
                       AND created_at >= :from AND created_at < :to
                       AND {r:users=id,links=invite_token_id}
                     GROUP BY 1
                 ) x GROUP BY 2"
            }
            _ => {
                "SELECT scope, d, CAST(SUM(links) AS BIGINT) AS links, CAST(SUM(visits) AS BIGINT) AS visits,
                    CAST(SUM(signups) AS BIGINT) AS signups FROM (
                   SELECT organization_id AS scope, {day:created_at} AS d, COUNT(*) AS links, 0 AS visits, 0 AS signups
                     FROM shared_links WHERE {org:organization_id}
                       AND created_at >= :from AND created_at < :to AND {r:links=id}
                     GROUP BY 1, 2
                   UNION ALL
                   SELECT organization_id, {day:created_at}, 0, COUNT(*), 0
                     FROM link_visits WHERE {org:organization_id}
                       AND created_at >= :from AND created_at < :to AND {r:links=shared_link_id}
                     GROUP BY 1, 2
                   UNION ALL
                   SELECT attributed_organization_id, {day:created_at}, 0, 0, COUNT(*)
                     FROM users WHERE acquisition_source = 'share' AND {org:attributed_organization_id}
                       AND created_at >= :from AND created_at < :to
                       AND {r:users=id,links=invite_token_id}
                     GROUP BY 1, 2
                 ) x GROUP BY 1, 2"
            }
        }
    }

    /// Per surface label: invitations first sent, links created, and INVITE/SHARE signups whose
    /// invitation or link came from it ("unknown" when it is gone with its project).
    pub fn surfaces(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, d, s, CAST(SUM(inv) AS BIGINT) AS invitations,
                    CAST(SUM(links) AS BIGINT) AS links, CAST(SUM(sig) AS BIGINT) AS signups FROM (
                   SELECT {day:created_at} AS d, COALESCE(surface, 'unknown') AS s,
                          COUNT(*) AS inv, 0 AS links, 0 AS sig
                     FROM invitations WHERE created_at >= :from AND created_at < :to AND {r:invitations=id}
                     GROUP BY 1, 2
                   UNION ALL
                   SELECT {day:created_at}, COALESCE(surface, 'unknown'), 0, COUNT(*), 0
                     FROM shared_links WHERE created_at >= :from AND created_at < :to AND {r:links=id}
                     GROUP BY 1, 2
                   UNION ALL
                   SELECT {day:v.created_at}, COALESCE(i.surface, l.surface, 'unknown'), 0, 0, COUNT(*)
                     FROM users v
                     LEFT JOIN invitations i ON v.acquisition_source = 'invite' AND i.id = v.invite_token_id
                     LEFT JOIN shared_links l ON v.acquisition_source = 'share' AND l.id = v.invite_token_id
                     WHERE v.acquisition_source IN ('invite', 'share')
                       AND v.created_at >= :from AND v.created_at < :to
                       AND {r:users=v.id,invitations=v.invite_token_id,links=v.invite_token_id}
                     GROUP BY 1, 2
                 ) x GROUP BY 2, 3"
            }
            _ => {
                "SELECT scope, d, s, CAST(SUM(inv) AS BIGINT) AS invitations,
                    CAST(SUM(links) AS BIGINT) AS links, CAST(SUM(sig) AS BIGINT) AS signups FROM (
                   SELECT organization_id AS scope, {day:created_at} AS d, COALESCE(surface, 'unknown') AS s,
                          COUNT(*) AS inv, 0 AS links, 0 AS sig
                     FROM invitations WHERE {org:organization_id}
                       AND created_at >= :from AND created_at < :to AND {r:invitations=id}
                     GROUP BY 1, 2, 3
                   UNION ALL
                   SELECT organization_id, {day:created_at}, COALESCE(surface, 'unknown'), 0, COUNT(*), 0
                     FROM shared_links WHERE {org:organization_id}
                       AND created_at >= :from AND created_at < :to AND {r:links=id}
                     GROUP BY 1, 2, 3
                   UNION ALL
                   SELECT v.attributed_organization_id, {day:v.created_at},
                          COALESCE(i.surface, l.surface, 'unknown'), 0, 0, COUNT(*)
                     FROM users v
                     LEFT JOIN invitations i ON v.acquisition_source = 'invite' AND i.id = v.invite_token_id
                     LEFT JOIN shared_links l ON v.acquisition_source = 'share' AND l.id = v.invite_token_id
                     WHERE v.acquisition_source IN ('invite', 'share') AND {org:v.attributed_organization_id}
                       AND v.created_at >= :from AND v.created_at < :to
                       AND {r:users=v.id,invitations=v.invite_token_id,links=v.invite_token_id}
                     GROUP BY 1, 2, 3
                 ) x GROUP BY 1, 2, 3"
            }
        }
    }

    /// Invitations first sent, and of those accepted, per first sender and day.
    pub fn inviters(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, {day:i.created_at} AS d, i.first_sent_by_user_id AS uid, COUNT(*) AS sent,
                    SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted
                 FROM invitations i
                 WHERE i.created_at >= :from AND i.created_at < :to AND {r:invitations=i.id}
                 GROUP BY 2, 3"
            }
            _ => {
                "SELECT i.organization_id AS scope, {day:i.created_at} AS d, i.first_sent_by_user_id AS uid,
                    COUNT(*) AS sent,
                    SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted
                 FROM invitations i
                 WHERE {org:i.organization_id} AND i.created_at >= :from AND i.created_at < :to
                   AND {r:invitations=i.id}
                 GROUP BY 1, 2, 3"
            }
        }
    }

    /// Every signup through a viral invitation with its credited inviter in the cohort: the
    /// cycle from the inviter's start to the invitee's signup.
    pub fn cycles(m: Mode) -> &'static str {
        match m {
            Mode::Platform => {
                "SELECT :nil AS scope, v.id AS invitee, u.id AS inviter, u.created_at AS cohort_at,
                    {ms:v.created_at} - {ms:u.created_at} AS cycle_ms
                 FROM users u
                 JOIN users v ON v.invited_by_user_id = u.id AND v.acquisition_source = 'invite'
                 JOIN invitations i ON i.id = v.invite_token_id AND i.team_invite = FALSE
                 WHERE u.created_at >= :from AND u.created_at < :to
                   AND {r:users=v.id,members=u.id}"
            }
            _ => {
                "SELECT m.organization_id AS scope, v.id AS invitee, m.user_id AS inviter,
                    m.joined_at AS cohort_at, {ms:v.created_at} - {ms:m.joined_at} AS cycle_ms
                 FROM memberships m
                 JOIN users v ON v.invited_by_user_id = m.user_id AND v.acquisition_source = 'invite'
                      AND v.attributed_organization_id = m.organization_id
                 JOIN invitations i ON i.id = v.invite_token_id AND i.team_invite = FALSE
                 WHERE {org:m.organization_id} AND m.joined_at >= :from AND m.joined_at < :to
                   AND v.created_at >= m.joined_at
                   AND {r:users=v.id,members=m.user_id}"
            }
        }
    }
}

fn scope(row: &QueryResult) -> DomainResult<Uuid> {
    Ok(row.try_get::<Uuid>("", "scope")?)
}

fn day(row: &QueryResult) -> DomainResult<String> {
    Ok(row.try_get::<String>("", "d")?)
}

/// A count column (every SUM is cast to BIGINT: PostgreSQL sums BIGINTs as NUMERIC).
fn n(row: &QueryResult, col: &str) -> DomainResult<i64> {
    Ok(row.try_get::<Option<i64>>("", col)?.unwrap_or(0))
}

/// Computes the chosen families for one mode over facts in `[from, to)`.
pub async fn measure(
    db: &impl ConnectionTrait,
    sql: &Sql,
    p: &Params<'_>,
    fam: Families,
    out: &mut Rollup,
) -> DomainResult<()> {
    let run = |t: &'static str| {
        let stmt = sql.statement(t, p);
        async move {
            let started = std::time::Instant::now();
            let rows = db.query_all_raw(stmt).await?;
            tracing::debug!(
                rows = rows.len(),
                ms = started.elapsed().as_millis() as u64,
                statement = t.split_whitespace().take(12).collect::<Vec<_>>().join(" "),
                "growth facts"
            );
            Ok::<_, DomainError>(rows)
        }
    };
    let m = p.mode;
    if fam.days {
        for row in run(templates::signups(m)).await? {
            let src: String = row.try_get("", "src")?;
            let i = SOURCES
                .iter()
                .position(|s| s.as_str() == src)
                .ok_or_else(|| {
                    DomainError::Internal(anyhow::anyhow!("unknown stored source {src:?}"))
                })?;
            out.days.entry((scope(&row)?, day(&row)?)).or_default()[col::SIGNUPS + i] +=
                n(&row, "n")?;
        }
        for row in run(templates::invitations(m)).await? {
            let e = out.days.entry((scope(&row)?, day(&row)?)).or_default();
            e[col::SENT] += n(&row, "sent")?;
            e[col::OPENED] += n(&row, "opened")?;
            e[col::ACCEPTED] += n(&row, "accepted")?;
            e[col::ACTIVATED] += n(&row, "activated")?;
        }
        for row in run(templates::shares(m)).await? {
            let e = out.days.entry((scope(&row)?, day(&row)?)).or_default();
            e[col::LINKS] += n(&row, "links")?;
            e[col::VISITS] += n(&row, "visits")?;
            e[col::SHARE_SIGNUPS] += n(&row, "signups")?;
        }
    }
    if fam.cohort {
        for row in run(templates::cohort_invitations(m)).await? {
            let e = out.days.entry((scope(&row)?, day(&row)?)).or_default();
            e[col::COHORT_INVITATIONS] += n(&row, "invitations")?;
            e[col::COHORT_CONVERSIONS] += n(&row, "conversions")?;
        }
        for row in run(templates::cohort_shares(m)).await? {
            out.days.entry((scope(&row)?, day(&row)?)).or_default()[col::COHORT_SHARES] +=
                n(&row, "n")?;
        }
    }
    if fam.surfaces {
        for row in run(templates::surfaces(m)).await? {
            let s: String = row.try_get("", "s")?;
            let e = out
                .surfaces
                .entry((scope(&row)?, day(&row)?, s))
                .or_default();
            e[0] += n(&row, "invitations")?;
            e[1] += n(&row, "links")?;
            e[2] += n(&row, "signups")?;
        }
    }
    if fam.inviters {
        for row in run(templates::inviters(m)).await? {
            let uid: Uuid = row.try_get("", "uid")?;
            let e = out
                .inviters
                .entry((scope(&row)?, day(&row)?, uid))
                .or_default();
            e[0] += n(&row, "sent")?;
            e[1] += n(&row, "accepted")?;
        }
    }
    if fam.cycles {
        for row in run(templates::cycles(m)).await? {
            let at: DateTime<Utc> = row.try_get("", "cohort_at")?;
            out.cycles.insert(
                (scope(&row)?, row.try_get("", "invitee")?),
                Some(Cycle {
                    inviter: row.try_get("", "inviter")?,
                    cohort_at: at,
                    cycle_ms: n(&row, "cycle_ms")?,
                }),
            );
        }
    }
    Ok(())
}

/// Everything the facts say for the platform and every organization (or only the facts in
/// `only`): what the rollup tables must hold.
pub async fn everything(
    db: &impl ConnectionTrait,
    sql: &Sql,
    w_ms: i64,
    only: Option<&Only>,
) -> DomainResult<Rollup> {
    let mut out = Rollup::default();
    for mode in [Mode::Platform, Mode::Orgs] {
        let p = Params {
            from: super::all_time().0,
            to: super::all_time().1,
            w_ms,
            mode,
            only,
        };
        measure(db, sql, &p, Families::ALL, &mut out).await?;
    }
    Ok(out)
}
