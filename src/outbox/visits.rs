//! Share-link visits on their way to the database. A visit has no transaction of its own to
//! ride in: the request puts it on this queue and waits; the visits worker
//! (`crate::visits`) drains the queue, group-commits a batch, and only then answers each
//! waiting request, so an acknowledged visit is durable.
use chrono::{DateTime, Utc};
use entity::ids::{OrgId, SharedLinkId, UserId};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// One open of a shared link.
#[derive(Clone, Debug)]
pub struct Visit {
    /// The link.
    pub link: SharedLinkId,
    /// Its organization.
    pub org: OrgId,
    /// The resource it shares (a polymorphic reference, as `shared_links.resource_id`).
    pub resource: Uuid,
    /// Distinct-visitor key: a user's id, a guest's visitor id, or one per request.
    pub visitor_id: String,
    /// The signed-in visitor, if any.
    pub user_id: Option<UserId>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a visit was not recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VisitRefused {
    /// The link was deleted (with its project) after it was resolved.
    #[error("the shared link is gone")]
    Gone,
    /// The batch failed to commit.
    #[error("recording visits failed: {0}")]
    Failed(String),
    /// The worker is not running (shutting down).
    #[error("visit writer stopped")]
    Stopped,
}

/// A visit waiting in the queue, with the request that waits for its outcome.
#[derive(Debug)]
pub struct Queued {
    /// The visit.
    pub visit: Visit,
    ack: oneshot::Sender<Result<(), VisitRefused>>,
}

impl Queued {
    /// Tells the waiting request how its visit went (it may have given up waiting: fine).
    pub fn answer(self, outcome: Result<(), VisitRefused>) {
        let _ = self.ack.send(outcome);
    }
}

/// The sending side, held by the rules: cheap to clone.
#[derive(Clone, Debug)]
pub struct VisitQueue {
    queue: mpsc::Sender<Queued>,
}

/// The receiving side, drained by the visits worker.
#[derive(Debug)]
pub struct VisitInbox {
    queue: mpsc::Receiver<Queued>,
}

impl VisitQueue {
    /// A queue holding at most `capacity` waiting visits (senders wait beyond that).
    pub fn new(capacity: usize) -> (VisitQueue, VisitInbox) {
        let (queue, rx) = mpsc::channel(capacity);
        (VisitQueue { queue }, VisitInbox { queue: rx })
    }

    /// Queues a visit; returns once the worker committed it (or refused it).
    pub async fn record(&self, visit: Visit) -> Result<(), VisitRefused> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Queued { visit, ack })
            .await
            .map_err(|_| VisitRefused::Stopped)?;
        done.await.unwrap_or(Err(VisitRefused::Stopped))
    }
}

impl VisitInbox {
    /// The next visit, waiting for one; `None` once every queue handle is gone.
    pub async fn recv(&mut self) -> Option<Queued> {
        self.queue.recv().await
    }

    /// The next visit if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Queued> {
        self.queue.try_recv().ok()
    }
}
