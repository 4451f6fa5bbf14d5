//! The write transaction: the one place a change commits, and the hook that runs after it
//! commits (subscribers, the webhook dispatcher and the mailer are woken, in-process caches
//! see a new epoch). What the transaction wrote is announced only once it has committed; a
//! dropped transaction rolls back and announces nothing.
use std::ops::Deref;

use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};

use super::{
    bus::{ActivityMessage, Bus, Revocation},
    Db,
};
use crate::rollups::Rollup;

/// A write transaction that remembers what to announce once it has committed.
pub struct Tx {
    txn: DatabaseTransaction,
    activity: Vec<ActivityMessage>,
    webhooks: bool,
    emails: bool,
    /// Scopes whose access this transaction changes: their live streams check again.
    revoked: Vec<Revocation>,
    /// Users this transaction wrote notifications for.
    notified: Vec<entity::ids::UserId>,
    /// Changes to the growth rollups, written just before commit.
    rollup: Rollup,
    /// See [`Tx::leaves_caches_valid`].
    cached_unchanged: bool,
}

impl Deref for Tx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Tx {
    /// Starts a write transaction.
    pub async fn begin(db: &Db) -> Result<Tx, DbErr> {
        Ok(Tx {
            txn: db.write.begin().await?,
            activity: Vec::new(),
            webhooks: false,
            emails: false,
            revoked: Vec::new(),
            notified: Vec::new(),
            rollup: Default::default(),
            cached_unchanged: false,
        })
    }

    /// Declares that this transaction changes nothing an in-process cache holds (what a
    /// link shows: link, project, organization, creator), so committing it leaves every
    /// cache valid. Only for the visit batches, which write visit facts and counters no
    /// cached view shows; a transaction that declares it wrongly serves stale data.
    pub fn leaves_caches_valid(&mut self) {
        self.cached_unchanged = true;
    }

    /// Commits, then wakes subscribers and the webhook dispatcher. Dropping a `Tx` without
    /// committing rolls it back and announces nothing.
    pub async fn commit(self, bus: &Bus) -> Result<(), DbErr> {
        crate::rollups::flush(&self.txn, &self.rollup).await?;
        bus.announce(
            &self.txn,
            &self.activity,
            self.webhooks,
            &self.revoked,
            &self.notified,
            !self.cached_unchanged,
        )
        .await?;
        self.txn.commit().await?;
        if !self.cached_unchanged {
            bus.bump_epoch();
        }
        // Access changes first: a stream whose access ended delivers nothing committed after.
        bus.revoke(&self.revoked);
        bus.publish(self.activity);
        bus.ring(&self.notified);
        if self.webhooks {
            bus.wake_webhooks();
        }
        if self.emails {
            bus.wake_mailer();
        }
        Ok(())
    }

    /// Adds changes to the growth rollups, written with the facts at commit.
    pub fn add_rollup(&mut self, change: &Rollup) {
        self.rollup.merge(change);
    }

    /// Notes a committed-to-be activity event, published to subscribers after commit.
    pub fn queued_activity(&mut self, event: ActivityMessage) {
        self.activity.push(event);
    }

    /// Notes that webhook deliveries were queued, so the dispatcher is woken after commit.
    pub fn queued_webhook(&mut self) {
        self.webhooks = true;
    }

    /// Notes that the access of `scope` changes (a session ends, a membership or a link
    /// changes): after commit, live streams authorized through it check again, here and on
    /// every instance.
    pub fn revoke(&mut self, scope: Revocation) {
        if !self.revoked.contains(&scope) {
            self.revoked.push(scope);
        }
    }

    /// Notes that notifications were written for `users`: their live streams are rung after
    /// commit, here and on every instance.
    pub fn queued_notifications(&mut self, users: impl IntoIterator<Item = entity::ids::UserId>) {
        for u in users {
            if !self.notified.contains(&u) {
                self.notified.push(u);
            }
        }
    }

    /// Notes that an email was queued, so the mailer is woken after commit.
    pub fn queued_email(&mut self) {
        self.emails = true;
    }
}
