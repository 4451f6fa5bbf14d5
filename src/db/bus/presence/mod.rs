//! Who is viewing a project right now: ephemeral, in memory, never written to the database.
//!
//! Each project with a viewer on this instance has a room holding every viewer this instance
//! knows of: its own ([`Seat`]s, one per live `presence` subscription) and, on PostgreSQL,
//! the other instances' (heard through `NOTIFY` on the bus's channel). A room exists only
//! while it has a seat here; its last seat leaving drops it, remote viewers with it.
//!
//! A viewer is gone when its seat is dropped (the socket closed or the stream ended) or when
//! it has been silent, neither joined nor updated, for the timeout; every instance expires
//! the viewers it holds by the same rule, so a crashed instance's viewers disappear too.
//! Subscribers are woken through a version counter and read everything that changed since
//! the version they last saw, so however many changes arrive between two frames, a frame
//! carries all of them once, with each viewer's last value.
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use entity::ids::ProjectId;
use tokio::sync::{watch, Notify};

use crate::clock::{Clock, SystemClock};

mod model;

pub(super) use model::Wire;
pub use model::{Change, Point, Settings, Viewer, ViewerKind};

/// The shortest time between two frames to one subscriber: changes arriving meanwhile wait
/// and travel together in the next frame.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(50);

/// Changes queued for the other instances before the oldest are dropped (the relay is
/// behind: presence is best-effort, its next update repairs it).
const RELAY_BACKLOG: usize = 20_000;

/// How long a room keeps the ids of viewers who left, for subscribers between two frames;
/// a subscriber further behind gets a full frame instead.
const LEFT_KEPT: usize = 1024;

struct Entry {
    viewer: Viewer,
    /// The room version of its last change.
    version: u64,
    /// When it was last heard of (by this instance's clock), for the silence timeout.
    seen: i64,
    /// Held by a seat of this instance.
    local: bool,
}

struct Room {
    viewers: HashMap<String, Entry>,
    version: u64,
    left: VecDeque<(u64, String)>,
    /// A subscriber that saw a version below this may have missed a departure.
    left_floor: u64,
    seats: usize,
    tx: watch::Sender<u64>,
}

impl Room {
    fn bump(&mut self) -> u64 {
        self.version += 1;
        self.tx.send_replace(self.version);
        self.version
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let e = self.viewers.remove(id)?;
        let v = self.bump();
        self.left.push_back((v, id.to_string()));
        while self.left.len() > LEFT_KEPT {
            if let Some((v, _)) = self.left.pop_front() {
                self.left_floor = v;
            }
        }
        Some(e)
    }
}

/// Reports the viewers held in `rooms` (`kfactor_presence_viewers`).
fn report(rooms: &HashMap<ProjectId, Room>) {
    let n: usize = rooms.values().map(|r| r.viewers.len()).sum();
    metrics::gauge!("kfactor_presence_viewers").set(n as f64);
}

/// Why a viewer could not join.
#[derive(Debug, PartialEq, Eq)]
pub struct Full(pub usize);

/// What became of an update.
#[derive(Debug, PartialEq, Eq)]
pub enum Updated {
    /// Applied here and relayed.
    Applied,
    /// This instance holds no room of the project: relayed to the instance that does.
    Relayed,
    /// The project's room here has no such viewer (it left or timed out).
    Gone,
}

/// Every presence room of this instance.
pub struct Presence {
    settings: Settings,
    clock: Arc<dyn Clock>,
    rooms: Mutex<HashMap<ProjectId, Room>>,
    relay_on: AtomicBool,
    outbox: Mutex<VecDeque<Wire>>,
    relay_wake: Notify,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rooms, viewers) = self.counts();
        f.debug_struct("Presence")
            .field("rooms", &rooms)
            .field("viewers", &viewers)
            .finish()
    }
}

impl Default for Presence {
    fn default() -> Self {
        Presence::new(Settings::default(), Arc::new(SystemClock))
    }
}

impl Presence {
    /// Rooms limited by `settings`, timed by `clock`.
    pub fn new(settings: Settings, clock: Arc<dyn Clock>) -> Presence {
        Presence {
            settings,
            clock,
            rooms: Mutex::default(),
            relay_on: AtomicBool::new(false),
            outbox: Mutex::default(),
            relay_wake: Notify::new(),
        }
    }

    /// The limits in force.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, Room>> {
        self.rooms.lock().expect("presence lock")
    }

    /// Rooms, and viewers in them (local and remote), for metrics and tests.
    pub fn counts(&self) -> (usize, usize) {
        let rooms = self.lock();
        (rooms.len(), rooms.values().map(|r| r.viewers.len()).sum())
    }

    /// Seats `viewer` in `project`'s room, unless the room is full.
    pub fn join(self: &Arc<Self>, project: ProjectId, mut viewer: Viewer) -> Result<Seat, Full> {
        let now = self.now();
        viewer.updated_at = now;
        let mut rooms = self.lock();
        let new = !rooms.contains_key(&project);
        let room = rooms.entry(project).or_insert_with(|| Room {
            viewers: HashMap::new(),
            version: 0,
            left: VecDeque::new(),
            left_floor: 0,
            seats: 0,
            tx: watch::channel(0).0,
        });
        if room.viewers.len() >= self.settings.max_viewers {
            if room.seats == 0 {
                rooms.remove(&project);
            }
            return Err(Full(self.settings.max_viewers));
        }
        let version = room.bump();
        room.seats += 1;
        room.viewers.insert(
            viewer.id.clone(),
            Entry {
                viewer: viewer.clone(),
                version,
                seen: now,
                local: true,
            },
        );
        let rx = room.tx.subscribe();
        report(&rooms);
        drop(rooms);
        let id = viewer.id.clone();
        self.relay(Wire::Join {
            p: project,
            v: viewer,
            hello: new,
        });
        Ok(Seat {
            project,
            id,
            seen: 0,
            rx,
            presence: self.clone(),
        })
    }

    /// Applies `change` to viewer `id` of `project` (refreshing its silence timer) and tells
    /// the other instances.
    pub fn update(&self, project: ProjectId, id: &str, change: Change) -> Updated {
        let now = self.now();
        let mut rooms = self.lock();
        let outcome = match rooms.get_mut(&project) {
            // Alone (SQLite), no room here means no such viewer anywhere.
            None if !self.relay_on.load(Ordering::Acquire) => Updated::Gone,
            None => Updated::Relayed,
            Some(room) => match room.viewers.contains_key(id) {
                false => Updated::Gone,
                true => {
                    let version = room.bump();
                    let e = room.viewers.get_mut(id).expect("present");
                    change.apply(&mut e.viewer, now);
                    e.version = version;
                    e.seen = now;
                    Updated::Applied
                }
            },
        };
        drop(rooms);
        if outcome != Updated::Gone {
            self.relay(Wire::Update {
                p: project,
                id: id.to_string(),
                c: change,
                at: now,
            });
        }
        outcome
    }

    fn leave(&self, project: ProjectId, id: &str) {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(&project) else {
            return;
        };
        room.seats = room.seats.saturating_sub(1);
        let was_here = room.remove(id).is_some();
        if room.seats == 0 {
            rooms.remove(&project);
        }
        report(&rooms);
        drop(rooms);
        if was_here {
            self.relay(Wire::Leave {
                p: project,
                id: id.to_string(),
            });
        }
    }

    /// Removes the viewers of `project` silent for longer than the timeout; the other
    /// instances are told of this instance's own.
    pub fn expire(&self, project: ProjectId) {
        let cutoff = self.now() - self.settings.timeout.as_millis() as i64;
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(&project) else {
            return;
        };
        let silent: Vec<String> = room
            .viewers
            .values()
            .filter(|e| e.seen < cutoff)
            .map(|e| e.viewer.id.clone())
            .collect();
        let mut gone = Vec::new();
        for id in silent {
            if let Some(e) = room.remove(&id) {
                if e.local {
                    gone.push(id);
                }
            }
        }
        report(&rooms);
        drop(rooms);
        for id in gone {
            self.relay(Wire::Leave { p: project, id });
        }
    }

    /// Takes what another instance announced.
    pub(super) fn heard(&self, wires: Vec<Wire>) {
        let now = self.now();
        let mut replies = Vec::new();
        let mut rooms = self.lock();
        for w in wires {
            match w {
                Wire::Join { p, v, hello } => {
                    let Some(room) = rooms.get_mut(&p) else {
                        continue;
                    };
                    if hello {
                        replies.extend(room.viewers.values().filter(|e| e.local).map(|e| {
                            Wire::Join {
                                p,
                                v: e.viewer.clone(),
                                hello: false,
                            }
                        }));
                    }
                    let known = room.viewers.contains_key(&v.id);
                    if known && room.viewers[&v.id].local {
                        continue;
                    }
                    if !known && room.viewers.len() >= self.settings.max_viewers {
                        continue;
                    }
                    let version = room.bump();
                    room.viewers.insert(
                        v.id.clone(),
                        Entry {
                            viewer: v,
                            version,
                            seen: now,
                            local: false,
                        },
                    );
                }
                Wire::Update { p, id, c, at } => {
                    let Some(room) = rooms.get_mut(&p) else {
                        continue;
                    };
                    if !room.viewers.contains_key(&id) {
                        continue;
                    }
                    let version = room.bump();
                    let e = room.viewers.get_mut(&id).expect("present");
                    c.apply(&mut e.viewer, at);
                    e.version = version;
                    e.seen = now;
                }
                Wire::Leave { p, id } => {
                    if let Some(room) = rooms.get_mut(&p) {
                        // A seat of this instance leaves only through this instance.
                        if room.viewers.get(&id).is_some_and(|e| !e.local) {
                            room.remove(&id);
                        }
                    }
                }
            }
        }
        report(&rooms);
        drop(rooms);
        for r in replies {
            self.relay(r);
        }
    }

    /// Turns on relaying to the other instances (PostgreSQL: a relay worker drains
    /// [`Presence::outgoing`]).
    pub fn enable_relay(&self) {
        self.relay_on.store(true, Ordering::Release);
    }

    fn relay(&self, w: Wire) {
        if !self.relay_on.load(Ordering::Acquire) {
            return;
        }
        let mut q = self.outbox.lock().expect("presence outbox lock");
        if q.len() >= RELAY_BACKLOG {
            q.pop_front();
        }
        q.push_back(w);
        drop(q);
        self.relay_wake.notify_one();
    }

    /// Waits for changes to tell the other instances and takes them all.
    pub(super) async fn outgoing(&self) -> Vec<Wire> {
        loop {
            {
                let mut q = self.outbox.lock().expect("presence outbox lock");
                if !q.is_empty() {
                    return q.drain(..).collect();
                }
            }
            self.relay_wake.notified().await;
        }
    }
}

/// One live presence subscription's place in its project's room; dropping it (the socket
/// closed, the stream ended) removes the viewer at once, on every instance.
pub struct Seat {
    project: ProjectId,
    id: String,
    seen: u64,
    rx: watch::Receiver<u64>,
    presence: Arc<Presence>,
}

/// What changed in a room since a seat's last frame.
#[derive(Debug, Default)]
pub struct Frame {
    /// `viewers` lists every viewer (the first frame, or after falling behind): replace
    /// what was shown.
    pub full: bool,
    /// Viewers that joined or changed (every viewer when `full`).
    pub viewers: Vec<Viewer>,
    /// Ids of viewers that left.
    pub left: Vec<String>,
    /// Viewers in the room now.
    pub count: usize,
    /// This seat's own viewer is no longer in the room (it timed out).
    pub gone: bool,
}

impl Seat {
    /// This viewer's public id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The project.
    pub fn project(&self) -> ProjectId {
        self.project
    }

    /// Resolves when the room changed since this seat's last frame.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The room is gone only once every seat left, this one included: never.
            std::future::pending::<()>().await
        }
    }

    /// Everything that changed since this seat's last frame (all of it in the first).
    pub fn frame(&mut self) -> Frame {
        let rooms = self.presence.lock();
        let Some(room) = rooms.get(&self.project) else {
            return Frame {
                gone: true,
                ..Frame::default()
            };
        };
        self.rx.mark_unchanged();
        let full = self.seen == 0 || self.seen < room.left_floor;
        let since = if full { 0 } else { self.seen };
        let mut viewers: Vec<Viewer> = room
            .viewers
            .values()
            .filter(|e| e.version > since)
            .map(|e| e.viewer.clone())
            .collect();
        viewers.sort_by(|a, b| a.id.cmp(&b.id));
        let left = if full {
            Vec::new()
        } else {
            room.left
                .iter()
                .filter(|(v, _)| *v > since)
                .map(|(_, id)| id.clone())
                .filter(|id| !room.viewers.contains_key(id))
                .collect()
        };
        self.seen = room.version;
        Frame {
            full,
            viewers,
            left,
            count: room.viewers.len(),
            gone: !room.viewers.contains_key(&self.id),
        }
    }

    /// How often a subscriber should sweep its room for silent viewers: a quarter of the
    /// timeout (between 20 ms and 1 s), so a silent viewer is gone soon after it.
    pub fn sweep_every(&self) -> Duration {
        (self.presence.settings.timeout / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(1))
    }

    /// Removes the silent viewers of this seat's room.
    pub fn expire(&self) {
        self.presence.expire(self.project)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.presence.leave(self.project, &self.id);
    }
}

#[cfg(test)]
mod tests;
