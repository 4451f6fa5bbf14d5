//! Statement building for the growth queries. The SQL is portable except for two
//! expressions, kept here: the UTC day of a timestamp, and a timestamp in whole milliseconds.
//! Window comparisons use the stored values directly (exact on both backends); durations
//! measured against the attribution window W compare whole milliseconds, so both backends
//! agree to the millisecond.
//!
//! Templates use `{day:col}`, `{ms:col}`, `{org:col}` (the organization filter of the mode),
//! `{r:kind=col,…}` (the restriction to a set of facts) and the parameters `:from`, `:to`,
//! `:w`, `:org`, `:nil`.
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseBackend, Statement, Value};
use uuid::Uuid;

use crate::domain::ids::{InvitationId, OrgId, SharedLinkId, UserId};

/// Whose facts a statement reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Platform scope (rows carry the nil scope id).
    Platform,
    /// One organization.
    Org(OrgId),
    /// Every organization, grouped by organization.
    Orgs,
}

/// Restricts a statement to the facts one operation touches (absent: every fact).
#[derive(Clone, Debug, Default)]
pub struct Only {
    /// Users as signups (and as the invitee of a conversion).
    pub users: Vec<UserId>,
    /// Users as cohort members (their memberships or signups as inviters).
    pub members: Vec<UserId>,
    /// Invitations.
    pub invitations: Vec<InvitationId>,
    /// Invitations first accepted by these users.
    pub accepted_by: Vec<UserId>,
    /// Shared links (and their visits, and the signups through them).
    pub links: Vec<SharedLinkId>,
}

impl Only {
    /// The ids of one kind, as the bound values of an `IN` list.
    fn list(&self, kind: &str) -> Vec<Value> {
        fn values<T: Copy + Into<Value>>(ids: &[T]) -> Vec<Value> {
            ids.iter().map(|&id| id.into()).collect()
        }
        match kind {
            "users" => values(&self.users),
            "members" => values(&self.members),
            "invitations" => values(&self.invitations),
            "accepted_by" => values(&self.accepted_by),
            "links" => values(&self.links),
            other => unreachable!("unknown restriction {other}"),
        }
    }
}

/// The bound values of one growth statement.
pub struct Params<'a> {
    /// Facts from (inclusive).
    pub from: DateTime<Utc>,
    /// Facts until (exclusive).
    pub to: DateTime<Utc>,
    /// W in milliseconds.
    pub w_ms: i64,
    /// Whose facts.
    pub mode: Mode,
    /// Only these facts (absent: all).
    pub only: Option<&'a Only>,
}

/// Builds statements for one backend, numbering placeholders `$1…` (both sqlx drivers accept
/// `$N`, reused as often as needed).
pub struct Sql {
    backend: DatabaseBackend,
}

impl Sql {
    /// Statements in the dialect of `backend`.
    pub fn new(backend: DatabaseBackend) -> Sql {
        Sql { backend }
    }

    fn day(&self, col: &str) -> String {
        match self.backend {
            // Stored as RFC 3339 text in UTC: the date is the first ten characters.
            DatabaseBackend::Sqlite => format!("substr({col}, 1, 10)"),
            _ => format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
        }
    }

    fn ms(&self, col: &str) -> String {
        match self.backend {
            DatabaseBackend::Sqlite => {
                format!("CAST(round(unixepoch({col}, 'subsec') * 1000) AS INTEGER)")
            }
            _ => format!("CAST(round(extract(epoch FROM {col}) * 1000) AS BIGINT)"),
        }
    }

    /// Expands a template for the given parameters.
    pub fn statement(&self, template: &str, p: &Params<'_>) -> Statement {
        let mut values: Vec<Value> = Vec::new();
        let mut named: Vec<(&'static str, usize)> = Vec::new();
        let bind = |values: &mut Vec<Value>, v: Value| {
            values.push(v);
            format!("${}", values.len())
        };
        let mut sql = String::with_capacity(template.len() + 256);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            sql.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("closed placeholder");
            let (kind, arg) = rest[open + 1..close]
                .split_once(':')
                .expect("{kind:argument}");
            match kind {
                "day" => sql.push_str(&self.day(arg)),
                "ms" => sql.push_str(&self.ms(arg)),
                "org" => match p.mode {
                    Mode::Org(_) => sql.push_str(&format!("{arg} = :org")),
                    Mode::Orgs => sql.push_str(&format!("{arg} IS NOT NULL")),
                    Mode::Platform => unreachable!("organization filter in a platform query"),
                },
                "r" => match p.only {
                    None => sql.push_str("1 = 1"),
                    Some(only) => {
                        let mut any = Vec::new();
                        for pair in arg.split(',') {
                            let (k, col) = pair.split_once('=').expect("kind=column");
                            let ids = only.list(k);
                            if ids.is_empty() {
                                continue;
                            }
                            let list: Vec<String> =
                                ids.into_iter().map(|id| bind(&mut values, id)).collect();
                            any.push(format!("{col} IN ({})", list.join(", ")));
                        }
                        if any.is_empty() {
                            sql.push_str("1 = 0");
                        } else {
                            sql.push('(');
                            sql.push_str(&any.join(" OR "));
                            sql.push(')');
                        }
                    }
                },
                other => unreachable!("unknown expression {other}"),
            }
            rest = &rest[close + 1..];
        }
        sql.push_str(rest);

        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let name = [":from", ":to", ":w", ":org", ":nil"]
                .into_iter()
                .find(|n| c == ':' && sql[i..].starts_with(n) && !is_ident(&sql, i + n.len()));
            let Some(name) = name else {
                out.push(c);
                continue;
            };
            for _ in 1..name.len() {
                chars.next();
            }
            let n = match named.iter().find(|(x, _)| *x == name) {
                Some((_, n)) => *n,
                None => {
                    let v: Value = match name {
                        ":from" => p.from.into(),
                        ":to" => p.to.into(),
                        ":w" => p.w_ms.into(),
                        ":nil" => Uuid::nil().into(),
                        _ => match p.mode {
                            Mode::Org(org) => org.0.into(),
                            _ => unreachable!(":org outside organization mode"),
                        },
                    };
                    values.push(v);
                    named.push((name, values.len()));
                    values.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_and_restrictions_expand() {
        let only = Only {
            invitations: vec![InvitationId(Uuid::nil())],
            ..Only::default()
        };
        let p = Params {
            from: Utc::now(),
            to: Utc::now(),
            w_ms: 5,
            mode: Mode::Org(OrgId(Uuid::nil())),
            only: Some(&only),
        };
        let s = Sql::new(DatabaseBackend::Postgres).statement(
            "a >= :from AND {org:o} AND b < :to AND {r:users=u,invitations=i} AND d >= :from AND {ms:x.y} < :w AND :tox",
            &p,
        );
        assert_eq!(
            s.sql,
            "a >= $2 AND o = $3 AND b < $4 AND (i IN ($1)) AND d >= $2 AND \
             CAST(round(extract(epoch FROM x.y) * 1000) AS BIGINT) < $5 AND :tox"
        );
        assert_eq!(s.values.unwrap().0.len(), 5);
        let none = Only::default();
        let p = Params {
            only: Some(&none),
            ..p
        };
        let s = Sql::new(DatabaseBackend::Sqlite).statement("{r:users=u}", &p);
        assert_eq!(s.sql, "1 = 0");
    }
}
