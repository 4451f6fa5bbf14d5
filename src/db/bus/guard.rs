//! Who may still see a live stream: each stream holds a [`Guard`] registered under the
//! scopes its authorization depends on (its user, its organization, its shared link). A
//! committed change to one of them ([`Revocation`]) flags the guards of that scope, here and,
//! through `NOTIFY`, on every instance; a flagged stream checks its access again against the
//! database before it delivers anything more. Between changes a delivered event costs an
//! atomic load, not a query.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use entity::ids::{OrgId, ProjectId, SharedLinkId, UserId};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// A scope whose access changed: every stream authorized through it checks again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "id", rename_all = "snake_case")]
pub enum Revocation {
    /// A user's access changed: a session ended (log-out, password change, deletion) or a
    /// membership ended or changed.
    User(UserId),
    /// An organization's access changed as a whole (scheduled for deletion, deleted).
    Org(OrgId),
    /// A shared link was revoked or changed.
    Link(SharedLinkId),
    /// A project was deleted (its links with it).
    Project(ProjectId),
}

#[derive(Default)]
struct Flag {
    raised: AtomicBool,
    notify: Notify,
}

impl Flag {
    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        // A stored permit wakes a stream that is not waiting right now as soon as it waits.
        self.notify.notify_one();
    }
}

type Entries = HashMap<u64, Arc<Flag>>;

/// Every live guard of this process, by scope.
#[derive(Default)]
pub(super) struct Guards {
    next: AtomicU64,
    by_scope: Mutex<HashMap<Revocation, Entries>>,
}

impl Guards {
    pub(super) fn register(self: &Arc<Self>, scopes: Vec<Revocation>) -> Guard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let flag = Arc::new(Flag::default());
        let mut map = self.by_scope.lock().expect("guards lock");
        for s in &scopes {
            map.entry(*s).or_default().insert(id, flag.clone());
        }
        drop(map);
        Guard {
            id,
            scopes,
            flag,
            guards: self.clone(),
        }
    }

    /// Flags every guard of `scope`.
    pub(super) fn revoke(&self, scope: &Revocation) {
        let map = self.by_scope.lock().expect("guards lock");
        if let Some(entries) = map.get(scope) {
            entries.values().for_each(|f| f.raise());
        }
    }

    /// Flags every guard: changes may have been missed (the listener reconnected).
    pub(super) fn revoke_all(&self) {
        let map = self.by_scope.lock().expect("guards lock");
        map.values()
            .flat_map(|e| e.values())
            .for_each(|f| f.raise());
    }

    /// Live guards (for tests and metrics).
    pub(super) fn len(&self) -> usize {
        let map = self.by_scope.lock().expect("guards lock");
        let mut ids: Vec<u64> = map.values().flat_map(|e| e.keys().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

/// A stream's registration; dropping it unregisters.
pub struct Guard {
    id: u64,
    scopes: Vec<Revocation>,
    flag: Arc<Flag>,
    guards: Arc<Guards>,
}

impl Guard {
    /// Resolves once a scope of this guard changed since the last time it resolved.
    pub async fn changed(&self) {
        loop {
            if self.flag.raised.swap(false, Ordering::AcqRel) {
                return;
            }
            self.flag.notify.notified().await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut map = self.guards.by_scope.lock().expect("guards lock");
        for s in &self.scopes {
            if let Some(entries) = map.get_mut(s) {
                entries.remove(&self.id);
                if entries.is_empty() {
                    map.remove(s);
                }
            }
        }
    }
}
