//! One broadcast channel per organization with live subscribers, so an event is handed only
//! to the streams of its own organization (no tenant's stream ever sees, or waits on, another
//! tenant's events), and a channel exists only while someone listens.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use entity::ids::OrgId;
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use super::ActivityMessage;

pub(super) struct Channels {
    capacity: usize,
    by_org: Mutex<HashMap<OrgId, broadcast::Sender<ActivityMessage>>>,
}

impl Channels {
    pub(super) fn new(capacity: usize) -> Channels {
        Channels {
            capacity: capacity.max(1),
            by_org: Mutex::default(),
        }
    }

    pub(super) fn subscribe(self: &Arc<Self>, org: OrgId) -> Feed {
        let mut map = self.by_org.lock().expect("channels lock");
        let rx = map
            .entry(org)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe();
        Feed {
            org,
            rx: Some(rx),
            channels: self.clone(),
        }
    }

    pub(super) fn publish(&self, event: ActivityMessage) {
        let map = self.by_org.lock().expect("channels lock");
        if let Some(tx) = map.get(&event.organization_id) {
            // Without receivers the channel would already be gone; an error here is harmless.
            let _ = tx.send(event);
        }
    }

    /// Organizations with a live channel.
    pub(super) fn len(&self) -> usize {
        self.by_org.lock().expect("channels lock").len()
    }
}

/// A receiver of one organization's committed activity; dropping the last one of an
/// organization removes its channel.
pub struct Feed {
    org: OrgId,
    rx: Option<broadcast::Receiver<ActivityMessage>>,
    channels: Arc<Channels>,
}

impl Feed {
    /// The next event, or `Lagged(n)` when this receiver fell `n` events behind.
    pub async fn recv(&mut self) -> Result<ActivityMessage, RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(RecvError::Closed),
        }
    }

    /// The next event if one is waiting (without waiting).
    pub fn try_recv(&mut self) -> Result<ActivityMessage, TryRecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.try_recv(),
            None => Err(TryRecvError::Closed),
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let mut map = self.channels.by_org.lock().expect("channels lock");
        drop(self.rx.take());
        if map
            .get(&self.org)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            map.remove(&self.org);
        }
    }
}
