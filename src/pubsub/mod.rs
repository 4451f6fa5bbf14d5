//! Fan-out of committed activity to live subscribers (in-process).
//!
//! Only the outbox publishes, and only after its transaction committed, so a subscriber never
//! sees a change that was rolled back.
use std::sync::Arc;

use tokio::sync::broadcast;

/// One committed activity event.
pub type ActivityMessage = Arc<entity::activity_events::Model>;

/// The in-process bus.
#[derive(Clone, Debug)]
pub struct Bus {
    activity: broadcast::Sender<ActivityMessage>,
    webhooks: Arc<tokio::sync::Notify>,
    emails: Arc<tokio::sync::Notify>,
    epoch: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Bus {
    fn default() -> Self {
        // A slow subscriber that falls this far behind misses events (it is told so by
        // `RecvError::Lagged`) rather than slowing every writer down.
        let (activity, _) = broadcast::channel(4096);
        Bus {
            activity,
            webhooks: Arc::new(tokio::sync::Notify::new()),
            emails: Arc::new(tokio::sync::Notify::new()),
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

    /// Wakes the mailer (emails were committed to the outbox).
    pub fn wake_mailer(&self) {
        self.emails.notify_one();
    }

    /// Waits until emails were committed.
    pub async fn mailer_woken(&self) {
        self.emails.notified().await
    }
}
