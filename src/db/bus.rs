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
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

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
    activity: Vec<Uuid>,
    /// Webhook messages were committed.
    #[serde(default)]
    webhooks: bool,
}

/// One committed activity event.
pub type ActivityMessage = Arc<entity::activity_events::Model>;

/// The in-process bus.
#[derive(Clone, Debug)]
pub struct Bus {
    /// This instance, to recognise its own announcements.
    instance: Uuid,
    activity: broadcast::Sender<ActivityMessage>,
    webhooks: Arc<tokio::sync::Notify>,
    emails: Arc<tokio::sync::Notify>,
    digest: Arc<tokio::sync::Notify>,
    epoch: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Bus {
    fn default() -> Self {
        // A slow subscriber that falls this far behind misses events (it is told so by
        // `RecvError::Lagged`) rather than slowing every writer down.
        let (activity, _) = broadcast::channel(4096);
        Bus {
            instance: Uuid::new_v4(),
            activity,
            webhooks: Arc::new(tokio::sync::Notify::new()),
            emails: Arc::new(tokio::sync::Notify::new()),
            digest: Arc::new(tokio::sync::Notify::new()),
            epoch: Arc::default(),
        }
    }
}

impl Bus {
    /// Publishes committed events.
    pub fn publish(&self, events: impl IntoIterator<Item = ActivityMessage>) {
        for e in events {
            // No receivers is fine: nobody is listening.
            let _ = self.activity.send(e);
        }
    }

    /// A receiver of every activity event committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ActivityMessage> {
        self.activity.subscribe()
    }

    /// Wakes the webhook dispatcher (new outbox messages were committed).
    pub fn wake_webhooks(&self) {
        self.webhooks.notify_one();
    }

    /// Waits until webhook messages were committed.
    pub async fn webhooks_woken(&self) {
        self.webhooks.notified().await
    }

    /// Counts committed write transactions of this process; in-process caches compare it to
    /// tell whether anything changed since they read.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks that a write transaction committed.
    pub fn bump_epoch(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
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

    /// Announces, inside `txn` and before it commits, its activity and webhook messages to
    /// the other instances (PostgreSQL; SQLite has one process).
    pub async fn announce(
        &self,
        txn: &impl ConnectionTrait,
        activity: &[ActivityMessage],
        webhooks: bool,
    ) -> Result<(), DbErr> {
        if txn.get_database_backend() != DatabaseBackend::Postgres
            || (activity.is_empty() && !webhooks)
        {
            return Ok(());
        }
        let ids: Vec<Uuid> = activity.iter().map(|a| a.id).collect();
        let mut chunks: Vec<&[Uuid]> = ids.chunks(IDS_PER_ANNOUNCEMENT).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (i, chunk) in chunks.into_iter().enumerate() {
            let payload = serde_json::to_string(&Announcement {
                from: self.instance,
                activity: chunk.to_vec(),
                webhooks: webhooks && i == 0,
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

    /// Takes an announcement heard on [`CHANNEL`]: wakes the webhook dispatcher when
    /// another instance committed messages, and returns the activity ids it committed (to be
    /// loaded and published here). Its own and unreadable announcements yield nothing.
    pub fn heard(&self, payload: &str) -> Vec<Uuid> {
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
        if a.webhooks {
            self.wake_webhooks();
        }
        a.activity
    }
}
