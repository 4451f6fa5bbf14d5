//! The bus: what a committed write transaction tells the rest of the process (live
//! subscribers, the webhook dispatcher, the mailer, in-process caches) and, on PostgreSQL, the
//! other instances.
//!
//! Only [`super::Tx::commit`] publishes, and only after its transaction committed, so a
//! subscriber never sees a change that was rolled back. On PostgreSQL, where several
//! instances share one database, each write transaction also announces its activity and
//! webhook messages with `NOTIFY` (delivered only if it commits); `crate::pubsub` listens on
//! every instance and republishes what the others committed, so a subscriber connected to any
//! instance sees every change, and new webhook messages wake every dispatcher.
//!
//! Activity travels on one channel per organization ([`channels`]); changes of access travel
//! as [`Revocation`]s to the [`Guard`]s of the streams they concern ([`guard`]), and
//! `crate::pubsub::live::guarded` joins the two into a stream that never outlives its
//! authorization.
use std::sync::Arc;

use entity::ids::{ActivityId, OrgId, UserId};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod channels;
mod guard;
pub mod presence;

pub use channels::Feed;
pub use guard::{Guard, Revocation};

/// The PostgreSQL channel of announcements.
pub const CHANNEL: &str = "kfactor_events";
/// Activity ids per announcement: NOTIFY payloads are limited to 8,000 bytes.
const IDS_PER_ANNOUNCEMENT: usize = 150;

/// What a committed transaction tells the other instances.
#[derive(Debug, Deserialize, Serialize)]
struct Announcement {
    /// The announcing instance (it published locally already).
    from: Uuid,
    /// Committed activity events, by id.
    #[serde(default)]
    activity: Vec<ActivityId>,
    /// Webhook messages were committed.
    #[serde(default)]
    webhooks: bool,
    /// Scopes whose access changed.
    #[serde(default)]
    revoked: Vec<Revocation>,
    /// Users who were sent notifications.
    #[serde(default)]
    notified: Vec<UserId>,
    /// The transaction may have changed what caches hold (see [`Bus::epoch`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    changed: bool,
    /// Presence changes (sent outside any transaction by the presence relay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    presence: Vec<presence::Wire>,
}

/// The largest presence announcement, in bytes (NOTIFY refuses payloads of 8,000 bytes).
pub const PRESENCE_PAYLOAD_MAX: usize = 7_500;

/// One committed activity event.
pub type ActivityMessage = Arc<entity::activity_events::Model>;

/// The in-process bus.
#[derive(Clone, Debug)]
pub struct Bus {
    /// This instance, to recognise its own announcements.
    instance: Uuid,
    channels: Arc<channels::Channels>,
    guards: Arc<guard::Guards>,
    webhooks: Arc<tokio::sync::Notify>,
    emails: Arc<tokio::sync::Notify>,
    digest: Arc<tokio::sync::Notify>,
    /// Rings with the id of each user who was sent notifications (ids only: a stream reads
    /// its own user's rows from the database, so nothing of one user reaches another).
    bell: tokio::sync::broadcast::Sender<UserId>,
    epoch: Arc<Epoch>,
    /// Who is viewing which project (ephemeral, in memory).
    presence: Arc<presence::Presence>,
}

impl std::fmt::Debug for channels::Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("orgs", &self.len())
            .finish()
    }
}

impl std::fmt::Debug for guard::Guards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guards").field("live", &self.len()).finish()
    }
}

/// Counts the committed write transactions that may have changed what an in-process cache
/// holds, here and (heard through [`CHANNEL`]) on the other instances.
#[derive(Debug, Default)]
struct Epoch {
    n: std::sync::atomic::AtomicU64,
    /// Other instances' changes may go unheard (PostgreSQL, listener not connected): no
    /// cache may be trusted.
    deaf: std::sync::atomic::AtomicBool,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(DEFAULT_BACKLOG)
    }
}

/// Events a subscriber may fall behind before its stream ends (see [`Bus::new`]).
pub const DEFAULT_BACKLOG: usize = crate::config::DEFAULT_SUBSCRIBER_BACKLOG;

impl Bus {
    /// A bus on which a subscriber may fall `backlog` events behind its organization's feed;
    /// one that falls further is ended with an error instead of slowing every writer down
    /// or being skipped ahead silently.
    pub fn new(backlog: usize) -> Self {
        Bus {
            instance: Uuid::new_v4(),
            channels: Arc::new(channels::Channels::new(backlog)),
            guards: Arc::default(),
            webhooks: Arc::new(tokio::sync::Notify::new()),
            emails: Arc::new(tokio::sync::Notify::new()),
            digest: Arc::new(tokio::sync::Notify::new()),
            bell: tokio::sync::broadcast::channel(backlog.max(1)).0,
            epoch: Arc::default(),
            presence: Arc::default(),
        }
    }

    /// This bus with presence limited by `settings` and timed by `clock`.
    pub fn with_presence(
        mut self,
        settings: presence::Settings,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        self.presence = Arc::new(presence::Presence::new(settings, clock));
        self
    }

    /// The presence rooms of this instance.
    pub fn presence(&self) -> &Arc<presence::Presence> {
        &self.presence
    }

    /// Sends this instance's presence changes to the other instances as they come, until
    /// the connection fails (PostgreSQL: `NOTIFY` on [`CHANNEL`], outside any transaction,
    /// batched into payloads below [`PRESENCE_PAYLOAD_MAX`] bytes).
    pub async fn relay_presence(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        self.presence.enable_relay();
        loop {
            let batch = self.presence.outgoing().await;
            for payload in self.presence_payloads(batch) {
                db.execute_raw(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [CHANNEL.into(), payload.into()],
                ))
                .await?;
            }
        }
    }

    /// Announcements carrying `batch`, each below [`PRESENCE_PAYLOAD_MAX`] bytes.
    fn presence_payloads(&self, batch: Vec<presence::Wire>) -> Vec<String> {
        let wrap = |wires: Vec<presence::Wire>| {
            serde_json::to_string(&Announcement {
                from: self.instance,
                activity: Vec::new(),
                webhooks: false,
                revoked: Vec::new(),
                notified: Vec::new(),
                changed: false,
                presence: wires,
            })
            .expect("presence serializes")
        };
        // The envelope without changes, and each change alone: inputs are bounded so that
        // one change always fits (see domain::presence).
        let envelope = wrap(Vec::new()).len() + 16;
        let mut out = Vec::new();
        let (mut current, mut size) = (Vec::new(), envelope);
        for w in batch {
            let len = serde_json::to_string(&w).map_or(usize::MAX, |s| s.len()) + 1;
            if envelope + len > PRESENCE_PAYLOAD_MAX {
                tracing::warn!(len, "a presence change too large to announce was dropped");
                continue;
            }
            if size + len > PRESENCE_PAYLOAD_MAX {
                out.push(wrap(std::mem::take(&mut current)));
                size = envelope;
            }
            size += len;
            current.push(w);
        }
        if !current.is_empty() {
            out.push(wrap(current));
        }
        out
    }

    /// Publishes committed events to their organizations' subscribers.
    pub fn publish(&self, events: impl IntoIterator<Item = ActivityMessage>) {
        for e in events {
            self.channels.publish(e);
        }
    }

    /// Tells this instance's notification streams that these users were sent notifications.
    pub fn ring(&self, users: &[UserId]) {
        for u in users {
            // No receiver: nobody is listening, nothing to do.
            let _ = self.bell.send(*u);
        }
    }

    /// A receiver of the ids of users sent notifications from now on (see [`Bus::ring`]).
    pub fn bell(&self) -> tokio::sync::broadcast::Receiver<UserId> {
        self.bell.subscribe()
    }

    /// A receiver of the activity of `org` committed from now on.
    pub fn feed(&self, org: OrgId) -> Feed {
        self.channels.subscribe(org)
    }

    /// Registers a stream whose access depends on `scopes`.
    pub fn guard(&self, scopes: Vec<Revocation>) -> Guard {
        self.guards.register(scopes)
    }

    /// Flags the streams of committed access changes (this instance; [`Bus::announce`]
    /// tells the others).
    pub fn revoke(&self, revoked: &[Revocation]) {
        revoked.iter().for_each(|r| self.guards.revoke(r));
    }

    /// Makes every live stream check its access again (the clock moved, or changes may have
    /// been missed).
    pub fn recheck_all(&self) {
        self.guards.revoke_all();
    }

    /// Live streams and organizations with subscribers (for metrics and tests).
    pub fn live_counts(&self) -> (usize, usize) {
        (self.guards.len(), self.channels.len())
    }

    /// Wakes the webhook dispatcher (new outbox messages were committed).
    pub fn wake_webhooks(&self) {
        self.webhooks.notify_one();
    }

    /// Waits until webhook messages were committed.
    pub async fn webhooks_woken(&self) {
        self.webhooks.notified().await
    }

    /// The count of committed write transactions that may have changed what an in-process
    /// cache holds (this instance's, and the other instances' it heard of); a cache entry
    /// read at one count is valid while the count stays. None while other instances'
    /// changes may go unheard: nothing cached may be served then.
    pub fn epoch(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        match self.epoch.deaf.load(Ordering::Acquire) {
            true => None,
            false => Some(self.epoch.n.load(Ordering::Acquire)),
        }
    }

    /// Marks that a write transaction committed.
    pub fn bump_epoch(&self) {
        self.epoch
            .n
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// This bus on a database other instances write too (PostgreSQL): caches are trusted
    /// only while [`Bus::hearing`] says the other instances' announcements arrive.
    pub fn shared_with_other_instances(self) -> Self {
        self.epoch
            .deaf
            .store(true, std::sync::atomic::Ordering::Release);
        self
    }

    /// Whether the other instances' announcements arrive (the listener is connected).
    /// Every change makes every cached entry stale: whatever went unheard is forgotten.
    pub fn hearing(&self, hearing: bool) {
        self.bump_epoch();
        self.epoch
            .deaf
            .store(!hearing, std::sync::atomic::Ordering::Release);
    }

    /// Wakes the digest scheduler (tests moved the clock, or an operator asked).
    pub fn wake_digest(&self) {
        self.digest.notify_one();
    }

    /// Resolves when [`Bus::wake_digest`] was called.
    pub async fn digest_woken(&self) {
        self.digest.notified().await
    }

    /// Wakes the mailer (emails were committed to the outbox).
    pub fn wake_mailer(&self) {
        self.emails.notify_one();
    }

    /// Waits until emails were committed.
    pub async fn mailer_woken(&self) {
        self.emails.notified().await
    }

    /// Announces, inside `txn` and before it commits, its activity, webhook messages,
    /// access changes and whether it may have changed what caches hold (`changed`) to the
    /// other instances (PostgreSQL; SQLite has one process).
    pub async fn announce(
        &self,
        txn: &impl ConnectionTrait,
        activity: &[ActivityMessage],
        webhooks: bool,
        revoked: &[Revocation],
        notified: &[UserId],
        changed: bool,
    ) -> Result<(), DbErr> {
        if txn.get_database_backend() != DatabaseBackend::Postgres
            || (activity.is_empty()
                && !webhooks
                && revoked.is_empty()
                && notified.is_empty()
                && !changed)
        {
            return Ok(());
        }
        let ids: Vec<ActivityId> = activity.iter().map(|a| a.id).collect();
        let mut chunks: Vec<&[ActivityId]> = ids.chunks(IDS_PER_ANNOUNCEMENT).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (i, chunk) in chunks.into_iter().enumerate() {
            let payload = serde_json::to_string(&Announcement {
                from: self.instance,
                activity: chunk.to_vec(),
                webhooks: webhooks && i == 0,
                revoked: if i == 0 { revoked.to_vec() } else { Vec::new() },
                // At most a few hundred ids per transaction (one per recipient).
                notified: if i == 0 {
                    notified.to_vec()
                } else {
                    Vec::new()
                },
                changed: changed && i == 0,
                presence: Vec::new(),
            })
            .map_err(|e| DbErr::Custom(e.to_string()))?;
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Takes an announcement heard on [`CHANNEL`]: flags the streams whose access another
    /// instance changed, wakes the webhook dispatcher when it committed messages, and returns the activity ids it committed (to be
    /// loaded and published here). Its own and unreadable announcements yield nothing.
    pub fn heard(&self, payload: &str) -> Vec<ActivityId> {
        let a: Announcement = match serde_json::from_str(payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, payload, "unreadable announcement");
                return Vec::new();
            }
        };
        if a.from == self.instance {
            return Vec::new();
        }
        if a.changed {
            self.bump_epoch();
        }
        self.revoke(&a.revoked);
        self.ring(&a.notified);
        if !a.presence.is_empty() {
            self.presence.heard(a.presence);
        }
        if a.webhooks {
            self.wake_webhooks();
        }
        a.activity
    }
}

#[cfg(test)]
mod tests {
    use super::{presence::*, *};

    /// However many changes pile up, each announcement stays under the NOTIFY limit and
    /// every change is in one of them; and the other instances read them back.
    #[test]
    fn presence_announcements_are_bounded_and_complete() {
        let bus = Bus::default();
        let project = entity::ids::ProjectId::generate();
        let batch: Vec<presence::Wire> = (0..500)
            .map(|i| presence::Wire::Update {
                p: project,
                id: format!("viewer{i}"),
                c: Change {
                    selection: Some("\"".repeat(1024)),
                    state: Some("s".repeat(256)),
                    ..Change::default()
                },
                at: i,
            })
            .collect();
        let payloads = bus.presence_payloads(batch);
        assert!(payloads.len() > 1);
        let mut seen = 0;
        for p in &payloads {
            assert!(p.len() < PRESENCE_PAYLOAD_MAX, "{} bytes", p.len());
            let a: Announcement = serde_json::from_str(p).unwrap();
            seen += a.presence.len();
        }
        assert_eq!(seen, 500);
    }
}
