//! The growth queries: SQL aggregation over stored facts, one statement per part whatever
//! the window or interval. Facts are grouped by UTC day (every bucket boundary is a UTC
//! midnight), so series buckets and window totals are sums of the same rows.
//!
//! The SQL is portable except for two expressions, kept here: the UTC day of a timestamp and
//! a timestamp in whole milliseconds. Comparisons against the window use the stored values
//! directly (exact on both backends); durations measured against the attribution window W
//! compare whole milliseconds, so both backends agree to the millisecond.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};
use uuid::Uuid;

use super::Scope;
use crate::domain::DomainResult;

/// The bound values of a growth question.
pub(super) struct Params {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// W in milliseconds.
    pub w_ms: i64,
    pub scope: Scope,
}

/// Builds statements for one backend, numbering `:name` placeholders as `$1…` (both sqlx
/// drivers accept `$N`, reused as often as needed).
pub(super) struct Sql {
    backend: DatabaseBackend,
}

impl Sql {
    pub fn new(backend: DatabaseBackend) -> Sql {
        Sql { backend }
    }

    /// `YYYY-MM-DD` of a timestamp in UTC.
    fn day(&self, col: &str) -> String {
        match self.backend {
            // Stored as RFC 3339 text in UTC: the date is the first ten characters.
            DatabaseBackend::Sqlite => format!("substr({col}, 1, 10)"),
            _ => format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
        }
    }

    /// A timestamp as whole milliseconds since the epoch (rounded to the nearest).
    fn ms(&self, col: &str) -> String {
        match self.backend {
            DatabaseBackend::Sqlite => {
                format!("CAST(round(unixepoch({col}, 'subsec') * 1000) AS INTEGER)")
            }
            _ => format!("CAST(round(extract(epoch FROM {col}) * 1000) AS BIGINT)"),
        }
    }

    /// Expands `{day:col}` and `{ms:col}` and binds the `:from`, `:to`, `:w` and `:org`
    /// placeholders the text uses.
    fn statement(&self, template: &str, p: &Params) -> Statement {
        let mut sql = String::with_capacity(template.len() + 256);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            sql.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("closed placeholder");
            let (kind, col) = rest[open + 1..close]
                .split_once(':')
                .expect("{kind:column}");
            sql.push_str(&match kind {
                "day" => self.day(col),
                "ms" => self.ms(col),
                other => unreachable!("unknown expression {other}"),
            });
            rest = &rest[close + 1..];
        }
        sql.push_str(rest);

        let mut values: Vec<Value> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let name = [":from", ":to", ":w", ":org"]
                .into_iter()
                .find(|n| c == ':' && sql[i..].starts_with(n) && !is_ident(&sql, i + n.len()));
            let Some(name) = name else {
                out.push(c);
                continue;
            };
            for _ in 1..name.len() {
                chars.next();
            }
            let n = match names.iter().position(|x| *x == name) {
                Some(k) => k + 1,
                None => {
                    names.push(name);
                    values.push(match name {
                        ":from" => p.from.into(),
                        ":to" => p.to.into(),
                        ":w" => p.w_ms.into(),
                        _ => match p.scope {
                            Scope::Organization(org) => org.0.into(),
                            Scope::Platform => unreachable!(":org in a platform query"),
                        },
                    });
                    names.len()
                }
            };
            out.push_str(&format!("${n}"));
        }
        Statement::from_sql_and_values(self.backend, out, values)
    }
}

fn is_ident(s: &str, at: usize) -> bool {
    s[at..]
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Signups per UTC day and source. Organization scope: memberships that began, by the
/// member's source.
pub(super) fn signups(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT {day:u.created_at} AS d, u.acquisition_source AS src, COUNT(*) AS n
             FROM users u
             WHERE u.created_at >= :from AND u.created_at < :to
             GROUP BY 1, 2"
        }
        Scope::Organization(_) => {
            "SELECT {day:m.joined_at} AS d, u.acquisition_source AS src, COUNT(*) AS n
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.organization_id = :org AND m.joined_at >= :from AND m.joined_at < :to
             GROUP BY 1, 2"
        }
    }
}

/// Per cohort day: viral invitations the cohort first sent within W of its start, and those
/// whose invitee signed up through them within W of the send.
pub(super) fn cohort_invitations(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT {day:u.created_at} AS d, COUNT(*) AS invitations, COUNT(v.id) AS conversions
             FROM users u
             JOIN invitations i ON i.first_sent_by_user_id = u.id
             LEFT JOIN users v ON v.invite_token_id = i.id AND v.acquisition_source = 'invite'
                  AND {ms:v.created_at} < {ms:i.created_at} + :w
             WHERE u.created_at >= :from AND u.created_at < :to
               AND i.team_invite = FALSE AND i.created_at >= u.created_at
               AND {ms:i.created_at} < {ms:u.created_at} + :w
             GROUP BY 1"
        }
        Scope::Organization(_) => {
            "SELECT {day:m.joined_at} AS d, COUNT(*) AS invitations, COUNT(v.id) AS conversions
             FROM memberships m
             JOIN invitations i ON i.first_sent_by_user_id = m.user_id
                  AND i.organization_id = m.organization_id
             LEFT JOIN users v ON v.invite_token_id = i.id AND v.acquisition_source = 'invite'
                  AND {ms:v.created_at} < {ms:i.created_at} + :w
             WHERE m.organization_id = :org AND m.joined_at >= :from AND m.joined_at < :to
               AND i.team_invite = FALSE AND i.created_at >= m.joined_at
               AND {ms:i.created_at} < {ms:m.joined_at} + :w
             GROUP BY 1"
        }
    }
}

/// Per cohort day: SHARE and REFERRAL signups credited to the cohort within W of its start
/// (organization scope: signups credited to this organization).
pub(super) fn cohort_shares(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT {day:u.created_at} AS d, COUNT(*) AS n
             FROM users u JOIN users v ON v.invited_by_user_id = u.id
             WHERE u.created_at >= :from AND u.created_at < :to
               AND v.acquisition_source IN ('share', 'referral')
               AND v.created_at >= u.created_at
               AND {ms:v.created_at} < {ms:u.created_at} + :w
             GROUP BY 1"
        }
        Scope::Organization(_) => {
            "SELECT {day:m.joined_at} AS d, COUNT(*) AS n
             FROM memberships m
             JOIN users v ON v.invited_by_user_id = m.user_id
                  AND v.attributed_organization_id = m.organization_id
             WHERE m.organization_id = :org AND m.joined_at >= :from AND m.joined_at < :to
               AND v.acquisition_source IN ('share', 'referral')
               AND v.created_at >= m.joined_at
               AND {ms:v.created_at} < {ms:m.joined_at} + :w
             GROUP BY 1"
        }
    }
}

/// Per day of first send: invitations and how far each got (at any time).
pub(super) fn invitations(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT {day:i.created_at} AS d, COUNT(*) AS sent,
                SUM(CASE WHEN i.first_opened_at IS NOT NULL OR i.first_accepted_at IS NOT NULL
                    THEN 1 ELSE 0 END) AS opened,
                SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted,
                SUM(CASE WHEN a.activated_at IS NOT NULL THEN 1 ELSE 0 END) AS activated
             FROM invitations i LEFT JOIN users a ON a.id = i.first_accepted_by_user_id
             WHERE i.created_at >= :from AND i.created_at < :to
             GROUP BY 1"
        }
        Scope::Organization(_) => {
            "SELECT {day:i.created_at} AS d, COUNT(*) AS sent,
                SUM(CASE WHEN i.first_opened_at IS NOT NULL OR i.first_accepted_at IS NOT NULL
                    THEN 1 ELSE 0 END) AS opened,
                SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted,
                SUM(CASE WHEN a.activated_at IS NOT NULL THEN 1 ELSE 0 END) AS activated
             FROM invitations i LEFT JOIN users a ON a.id = i.first_accepted_by_user_id
             WHERE i.organization_id = :org AND i.created_at >= :from AND i.created_at < :to
             GROUP BY 1"
        }
    }
}

/// Links created, opens, distinct visitors and SHARE signups in the window.
pub(super) fn share_funnel(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT
               (SELECT COUNT(*) FROM shared_links
                 WHERE created_at >= :from AND created_at < :to) AS links,
               (SELECT COUNT(*) FROM link_visits
                 WHERE created_at >= :from AND created_at < :to) AS visits,
               (SELECT COUNT(*) FROM (SELECT DISTINCT visitor_id FROM link_visits
                 WHERE created_at >= :from AND created_at < :to) x) AS visitors,
               (SELECT COUNT(*) FROM users WHERE acquisition_source = 'share'
                 AND created_at >= :from AND created_at < :to) AS signups"
        }
        Scope::Organization(_) => {
            "SELECT
               (SELECT COUNT(*) FROM shared_links WHERE organization_id = :org
                 AND created_at >= :from AND created_at < :to) AS links,
               (SELECT COUNT(*) FROM link_visits WHERE organization_id = :org
                 AND created_at >= :from AND created_at < :to) AS visits,
               (SELECT COUNT(*) FROM (SELECT DISTINCT visitor_id FROM link_visits
                 WHERE organization_id = :org
                   AND created_at >= :from AND created_at < :to) x) AS visitors,
               (SELECT COUNT(*) FROM users WHERE acquisition_source = 'share'
                 AND attributed_organization_id = :org
                 AND created_at >= :from AND created_at < :to) AS signups"
        }
    }
}

/// The most successful inviters of the window (at most [`super::TOP_INVITERS_MAX`]).
pub(super) fn top_inviters(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT i.first_sent_by_user_id AS uid, COUNT(*) AS sent,
                SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted
             FROM invitations i
             WHERE i.created_at >= :from AND i.created_at < :to
             GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1 LIMIT 100"
        }
        Scope::Organization(_) => {
            "SELECT i.first_sent_by_user_id AS uid, COUNT(*) AS sent,
                SUM(CASE WHEN i.first_accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS accepted
             FROM invitations i
             WHERE i.organization_id = :org AND i.created_at >= :from AND i.created_at < :to
             GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1 LIMIT 100"
        }
    }
}

/// Per surface label: invitations first sent, links created, and INVITE/SHARE signups whose
/// invitation or link came from it. A signup whose link is gone (its project was deleted)
/// has no known surface and counts as "unknown".
pub(super) fn surfaces(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT s, CAST(SUM(inv) AS BIGINT) AS invitations, CAST(SUM(links) AS BIGINT) AS links,
                    CAST(SUM(sig) AS BIGINT) AS signups FROM (
               SELECT COALESCE(surface, 'unknown') AS s, COUNT(*) AS inv, 0 AS links, 0 AS sig
                 FROM invitations WHERE created_at >= :from AND created_at < :to GROUP BY 1
               UNION ALL
               SELECT COALESCE(surface, 'unknown'), 0, COUNT(*), 0
                 FROM shared_links WHERE created_at >= :from AND created_at < :to GROUP BY 1
               UNION ALL
               SELECT COALESCE(i.surface, l.surface, 'unknown'), 0, 0, COUNT(*)
                 FROM users v
                 LEFT JOIN invitations i ON v.acquisition_source = 'invite' AND i.id = v.invite_token_id
                 LEFT JOIN shared_links l ON v.acquisition_source = 'share' AND l.id = v.invite_token_id
                 WHERE v.acquisition_source IN ('invite', 'share')
                   AND v.created_at >= :from AND v.created_at < :to
                 GROUP BY 1
             ) x GROUP BY s ORDER BY 4 DESC, 1"
        }
        Scope::Organization(_) => {
            "SELECT s, CAST(SUM(inv) AS BIGINT) AS invitations, CAST(SUM(links) AS BIGINT) AS links,
                    CAST(SUM(sig) AS BIGINT) AS signups FROM (
               SELECT COALESCE(surface, 'unknown') AS s, COUNT(*) AS inv, 0 AS links, 0 AS sig
                 FROM invitations WHERE organization_id = :org
                   AND created_at >= :from AND created_at < :to GROUP BY 1
               UNION ALL
               SELECT COALESCE(surface, 'unknown'), 0, COUNT(*), 0
                 FROM shared_links WHERE organization_id = :org
                   AND created_at >= :from AND created_at < :to GROUP BY 1
               UNION ALL
               SELECT COALESCE(i.surface, l.surface, 'unknown'), 0, 0, COUNT(*)
                 FROM users v
                 LEFT JOIN invitations i ON v.acquisition_source = 'invite' AND i.id = v.invite_token_id
                 LEFT JOIN shared_links l ON v.acquisition_source = 'share' AND l.id = v.invite_token_id
                 WHERE v.acquisition_source IN ('invite', 'share')
                   AND v.attributed_organization_id = :org
                   AND v.created_at >= :from AND v.created_at < :to
                 GROUP BY 1
             ) x GROUP BY s ORDER BY 4 DESC, 1"
        }
    }
}

/// The median hours from a cohort member's start to the signup of an invitee credited to
/// them through a viral invitation (the mean of the two middle values for an even count);
/// NULL when there are none.
pub(super) fn median_cycle(p: &Params) -> &'static str {
    match p.scope {
        Scope::Platform => {
            "SELECT AVG(h) AS median FROM (
               SELECT h, ROW_NUMBER() OVER (ORDER BY h) AS rn, COUNT(*) OVER () AS n FROM (
                 SELECT CAST({ms:v.created_at} - {ms:u.created_at} AS DOUBLE PRECISION) / 3600000.0 AS h
                 FROM users u
                 JOIN users v ON v.invited_by_user_id = u.id AND v.acquisition_source = 'invite'
                 JOIN invitations i ON i.id = v.invite_token_id AND i.team_invite = FALSE
                 WHERE u.created_at >= :from AND u.created_at < :to
               ) c
             ) r WHERE rn IN ((n + 1) / 2, (n + 2) / 2)"
        }
        Scope::Organization(_) => {
            "SELECT AVG(h) AS median FROM (
               SELECT h, ROW_NUMBER() OVER (ORDER BY h) AS rn, COUNT(*) OVER () AS n FROM (
                 SELECT CAST({ms:v.created_at} - {ms:m.joined_at} AS DOUBLE PRECISION) / 3600000.0 AS h
                 FROM memberships m
                 JOIN users v ON v.invited_by_user_id = m.user_id AND v.acquisition_source = 'invite'
                      AND v.attributed_organization_id = m.organization_id
                 JOIN invitations i ON i.id = v.invite_token_id AND i.team_invite = FALSE
                 WHERE m.organization_id = :org AND m.joined_at >= :from AND m.joined_at < :to
                   AND v.created_at >= m.joined_at
               ) c
             ) r WHERE rn IN ((n + 1) / 2, (n + 2) / 2)"
        }
    }
}

/// Runs one part's statement.
pub(super) async fn rows(
    db: &impl ConnectionTrait,
    sql: &Sql,
    template: &str,
    p: &Params,
) -> DomainResult<Vec<sea_orm::QueryResult>> {
    Ok(db.query_all_raw(sql.statement(template, p)).await?)
}

/// A column that is a count (NULL for SUM over no rows is 0).
pub(super) fn count(row: &sea_orm::QueryResult, col: &str) -> DomainResult<i64> {
    Ok(row.try_get::<Option<i64>>("", col)?.unwrap_or(0))
}

/// A user id column.
pub(super) fn uuid(row: &sea_orm::QueryResult, col: &str) -> DomainResult<Uuid> {
    Ok(row.try_get::<Uuid>("", col)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::OrgId;

    #[test]
    fn placeholders_are_numbered_once_each() {
        let p = Params {
            from: Utc::now(),
            to: Utc::now(),
            w_ms: 5,
            scope: Scope::Organization(OrgId(Uuid::nil())),
        };
        let s = Sql::new(DatabaseBackend::Postgres).statement(
            "a >= :from AND b < :to AND c = :org AND d >= :from AND {ms:x.y} < :w AND :tox",
            &p,
        );
        assert_eq!(
            s.sql,
            "a >= $1 AND b < $2 AND c = $3 AND d >= $1 AND \
             CAST(round(extract(epoch FROM x.y) * 1000) AS BIGINT) < $4 AND :tox"
        );
        assert_eq!(s.values.unwrap().0.len(), 4);
    }
}
