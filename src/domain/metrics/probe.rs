//! Keeping the rollups equal to the facts as the facts change.
//!
//! An operation that changes growth facts opens a [`Probe`] on the facts it touches before
//! changing anything and closes it after: the probe measures the rollup rows of those facts
//! (the same statements that define the rows, restricted to those facts) before and after, and
//! the difference joins the transaction's rollup changes, written just before commit. So a
//! rollup row is always what the facts say, by construction, whatever the operation.
//!
//! On PostgreSQL the probe first takes transaction-scoped advisory locks on every fact and
//! person it depends on, so two operations that share one cannot measure in between each
//! other's changes.
use entity::ids::OrgId;
use entity::ids::UserId;
use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use uuid::Uuid;

use super::{
    all_time,
    facts::{self, Families},
    lock_key,
    sql::{Mode, Only, Params, Sql},
    visitors,
};
use crate::{
    db::Tx,
    domain::{DomainResult, Services},
    rollups::Rollup,
};

/// Which scopes an operation can change.
#[derive(Clone, Copy, Debug)]
pub enum Scopes {
    /// The platform and organizations.
    Both,
    /// Organizations only (a membership changed).
    Orgs,
}

/// An open measurement of the facts one operation touches.
pub struct Probe {
    only: Only,
    scopes: Scopes,
    visitors: BTreeSet<visitors::Visitor>,
    gone: Option<Uuid>,
    before: Rollup,
}

impl Probe {
    /// Locks (PostgreSQL) and measures the facts in `only` before the operation changes them.
    /// `people` are users whose memberships or signups the measurements depend on.
    pub async fn open(
        tx: &Tx,
        svc: &Services,
        only: Only,
        people: &[UserId],
        scopes: Scopes,
    ) -> DomainResult<Probe> {
        lock(&**tx, &only, people).await?;
        let before = measure(tx, svc, &only, scopes).await?;
        Ok(Probe {
            only,
            scopes,
            visitors: BTreeSet::new(),
            gone: None,
            before,
        })
    }

    /// Like [`Probe::open`] for an operation that deletes shared links (with their visits) or
    /// moves them to organization `to`: their visitors' days are brought back in line with the
    /// remaining visits when the probe closes.
    pub async fn open_with_links(
        tx: &Tx,
        svc: &Services,
        only: Only,
        people: &[UserId],
        to: Option<OrgId>,
    ) -> DomainResult<Probe> {
        let mut affected = visitors::of_links(&**tx, &only.links).await?;
        if let Some(to) = to {
            let moved: Vec<visitors::Visitor> =
                affected.iter().map(|(_, v)| (to.0, v.clone())).collect();
            affected.extend(moved);
        }
        let mut probe = Probe::open(tx, svc, only, people, Scopes::Both).await?;
        probe.visitors = affected;
        Ok(probe)
    }

    /// For facts the operation just created (nothing of them can have been measured before):
    /// locks (PostgreSQL), measures them and adds them to the transaction's rollup changes.
    pub async fn created(
        tx: &mut Tx,
        svc: &Services,
        only: Only,
        people: &[UserId],
    ) -> DomainResult<()> {
        lock(&**tx, &only, people).await?;
        Probe {
            only,
            scopes: Scopes::Both,
            visitors: BTreeSet::new(),
            gone: None,
            before: Rollup::default(),
        }
        .close(tx, svc)
        .await
    }

    /// The operation deletes this organization: its rollups go instead of being adjusted.
    pub fn deleting_scope(mut self, org: OrgId) -> Self {
        self.gone = Some(org.0);
        self
    }

    /// Measures again and adds the difference to the transaction's rollup changes.
    pub async fn close(self, tx: &mut Tx, svc: &Services) -> DomainResult<()> {
        let after = measure(tx, svc, &self.only, self.scopes).await?;
        let mut change = Rollup::change(&self.before, &after);
        if !self.visitors.is_empty() {
            change.merge(&visitors::repair(&**tx, &self.visitors).await?);
        }
        if let Some(gone) = self.gone {
            change.days.retain(|(s, _), _| *s != gone);
            change.surfaces.retain(|(s, _, _), _| *s != gone);
            change.inviters.retain(|(s, _, _), _| *s != gone);
            change.firsts.retain(|(s, _, _), _| *s != gone);
            change.cycles.retain(|(s, _), _| *s != gone);
            for table in super::rebuild::TABLES {
                tx.execute_raw(Statement::from_sql_and_values(
                    tx.get_database_backend(),
                    format!("DELETE FROM {table} WHERE scope_id = $1"),
                    [gone.into()],
                ))
                .await?;
            }
        }
        tx.add_rollup(&change);
        Ok(())
    }
}

async fn measure(tx: &Tx, svc: &Services, only: &Only, scopes: Scopes) -> DomainResult<Rollup> {
    let sql = Sql::new(svc.db.backend());
    let mut out = Rollup::default();
    let modes: &[Mode] = match scopes {
        Scopes::Both => &[Mode::Platform, Mode::Orgs],
        Scopes::Orgs => &[Mode::Orgs],
    };
    for mode in modes {
        let p = Params {
            from: all_time().0,
            to: all_time().1,
            w_ms: svc.config.attribution_window.num_milliseconds(),
            mode: *mode,
            only: Some(only),
        };
        facts::measure(&**tx, &sql, &p, Families::ALL, &mut out).await?;
    }
    Ok(out)
}

/// PostgreSQL: one transaction at a time per touched fact or person, keys in order.
async fn lock(db: &impl ConnectionTrait, only: &Only, people: &[UserId]) -> DomainResult<()> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let users = (only.users.iter())
        .chain(&only.members)
        .chain(&only.accepted_by)
        .chain(people)
        .map(|id| id.0);
    let keys: Vec<i64> = users
        .chain(only.invitations.iter().map(|id| id.0))
        .chain(only.links.iter().map(|id| id.0))
        .map(|id| lock_key(&[id.as_bytes()]))
        .collect();
    super::advisory_locks(db, keys).await?;
    Ok(())
}
