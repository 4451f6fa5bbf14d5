//! A live stream that never outlives its authorization: events of one organization's feed,
//! delivered only while the subscriber's access holds. Access is checked again (by the
//! caller's `verify`) whenever its [`Guard`] is flagged and when the deadline `verify`
//! returned (a session's or a link's expiry) passes; a refused check, or a subscriber that
//! fell too far behind, ends the stream with the reason as its last item.
use entity::ids::UserId;
use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::Stream;
use tokio::{sync::broadcast::error::RecvError, time::Sleep};

use super::{ActivityMessage, Feed, Guard};
use crate::db::bus::presence::{Frame, Seat, FRAME_INTERVAL};
use crate::{clock::Clock, domain::DomainError};

/// Why a live stream ended on its own.
#[derive(Debug)]
pub enum Ended {
    /// The subscriber fell this many events behind its organization's feed.
    Lagged(u64),
    /// Access was checked again and refused.
    Denied(DomainError),
    /// A presence viewer was silent for longer than the timeout and left its project.
    Silent,
}

/// The result of a check: still allowed (until the deadline, if any), or refused.
pub type Verified = Result<Option<DateTime<Utc>>, DomainError>;

/// Joins `feed`, `guard` and `verify` into one stream (see the module docs). The checks are
/// boxed where they run: they are rare, and a database future held inline would make every
/// idle stream (thousands per instance) as large as the largest query. `until` is the
/// deadline of the check made before subscribing; `keep` selects the events to deliver.
pub fn guarded<K, V, F>(
    clock: Arc<dyn Clock>,
    mut feed: Feed,
    guard: Guard,
    until: Option<DateTime<Utc>>,
    mut keep: K,
    verify: V,
) -> impl Stream<Item = Result<ActivityMessage, Ended>> + Send
where
    K: FnMut(&ActivityMessage) -> bool + Send + 'static,
    V: Fn() -> F + Send + 'static,
    F: Future<Output = Verified> + Send,
{
    async_stream::stream! {
        let mut deadline = Deadline::new(&*clock, until);
        loop {
            // The guard comes first: once a change of access committed, nothing is delivered
            // before the check (events committed before the change were allowed when made).
            tokio::select! {
                biased;
                () = guard.changed() => {}
                () = deadline.passed() => {}
                r = feed.recv() => {
                    match r {
                        Ok(e) => {
                            if keep(&e) {
                                yield Ok(e);
                            }
                            if !deadline.due(&*clock) {
                                continue;
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            yield Err(Ended::Lagged(n));
                            break;
                        }
                        Err(RecvError::Closed) => break,
                    }
                }
            }
            match Box::pin(verify()).await {
                Ok(next) => deadline.set(&*clock, next),
                Err(e) => {
                    yield Err(Ended::Denied(e));
                    break;
                }
            }
        }
    }
}

/// The deadline of the last check, as one timer that lives as long as the stream (not one
/// per delivered event: with thousands of subscribers, each event would otherwise register
/// and cancel a timer per subscriber).
struct Deadline {
    until: Option<DateTime<Utc>>,
    timer: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(clock: &dyn Clock, until: Option<DateTime<Utc>>) -> Self {
        let mut d = Self {
            until: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        };
        d.set(clock, until);
        d
    }

    fn set(&mut self, clock: &dyn Clock, until: Option<DateTime<Utc>>) {
        self.until = until;
        if let Some(t) = until {
            let left = (t - clock.now()).to_std().unwrap_or_default();
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + left);
        }
    }

    /// Whether the deadline passed by `clock`, which (injected in tests) may move ahead of
    /// the timer.
    fn due(&self, clock: &dyn Clock) -> bool {
        self.until.is_some_and(|t| clock.now() >= t)
    }

    /// Resolves once the deadline passed (at once after that, until it is set again); never
    /// without one.
    async fn passed(&mut self) {
        match self.until {
            Some(_) => self.timer.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

/// A live stream of rows the database holds for one user, read again whenever the bus
/// rings for `user` ([`crate::db::bus::Bus::ring`]); guarded like [`guarded`]. `load(last)`
/// returns what follows `last` in order, and `id` names a row so the stream resumes after
/// it. A missed ring (the bell lagged) only means reading again: nothing is skipped.
#[allow(clippy::too_many_arguments)]
pub fn rung<T, L, LF, I, V, F>(
    clock: Arc<dyn Clock>,
    mut bell: tokio::sync::broadcast::Receiver<UserId>,
    user: UserId,
    guard: Guard,
    until: Option<DateTime<Utc>>,
    mut last: Option<I>,
    load: L,
    id: fn(&T) -> I,
    verify: V,
) -> impl Stream<Item = Result<T, Ended>> + Send
where
    T: Send + 'static,
    I: Copy + Send + 'static,
    L: Fn(Option<I>) -> LF + Send + 'static,
    LF: Future<Output = Result<Vec<T>, DomainError>> + Send,
    V: Fn() -> F + Send + 'static,
    F: Future<Output = Verified> + Send,
{
    async_stream::stream! {
        let mut deadline = Deadline::new(&*clock, until);
        loop {
            let read = tokio::select! {
                biased;
                () = guard.changed() => false,
                () = deadline.passed() => false,
                r = bell.recv() => match r {
                    // Another user's ring: nothing to read and nothing to check again.
                    Ok(u) if u != user && !deadline.due(&*clock) => continue,
                    Ok(u) => u == user,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => break,
                },
            };
            if read {
                match Box::pin(load(last)).await {
                    Ok(rows) => {
                        for r in rows {
                            last = Some(id(&r));
                            yield Ok(r);
                        }
                    }
                    Err(e) => {
                        yield Err(Ended::Denied(e));
                        break;
                    }
                }
                if !deadline.due(&*clock) {
                    continue;
                }
            }
            match Box::pin(verify()).await {
                Ok(next) => deadline.set(&*clock, next),
                Err(e) => {
                    yield Err(Ended::Denied(e));
                    break;
                }
            }
        }
    }
}

/// A presence viewer's frames: its room's changes since its last frame, at most one frame
/// per [`FRAME_INTERVAL`] (what changes meanwhile travels together, each viewer with its
/// last value), guarded like [`guarded`]. While it runs it sweeps the room for silent
/// viewers; when its own viewer is found silent the stream ends (`Ended::Silent`), and
/// dropping it (the socket closed) removes the viewer.
pub fn presence<V, F>(
    clock: Arc<dyn Clock>,
    mut seat: Seat,
    guard: Guard,
    until: Option<DateTime<Utc>>,
    verify: V,
) -> impl Stream<Item = Result<Frame, Ended>> + Send
where
    V: Fn() -> F + Send + 'static,
    F: Future<Output = Verified> + Send,
{
    enum Woke {
        Check,
        Due,
        Changed,
        Sweep,
    }
    async_stream::stream! {
        let mut deadline = Deadline::new(&*clock, until);
        let mut sweep = tokio::time::interval(seat.sweep_every());
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        metrics::counter!("kfactor_presence_frames_total").increment(1);
        yield Ok(seat.frame());
        let mut last = tokio::time::Instant::now();
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            // The injected clock may have passed the deadline ahead of its timer.
            let woke = if deadline.due(&*clock) {
                Woke::Check
            } else {
                let frame_at = async {
                    match due {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                // The guard comes first: after a change of access nothing more is delivered
                // before the check.
                tokio::select! {
                    biased;
                    () = guard.changed() => Woke::Check,
                    () = deadline.passed() => Woke::Check,
                    () = frame_at => Woke::Due,
                    () = seat.changed(), if due.is_none() => Woke::Changed,
                    _ = sweep.tick() => Woke::Sweep,
                }
            };
            match woke {
                Woke::Sweep => seat.expire(),
                Woke::Changed => due = Some((last + FRAME_INTERVAL).max(tokio::time::Instant::now())),
                Woke::Due => {
                    due = None;
                    let f = seat.frame();
                    last = tokio::time::Instant::now();
                    if f.gone {
                        yield Err(Ended::Silent);
                        break;
                    }
                    if f.full || !f.viewers.is_empty() || !f.left.is_empty() {
                        metrics::counter!("kfactor_presence_frames_total").increment(1);
                        yield Ok(f);
                    }
                }
                Woke::Check => match Box::pin(verify()).await {
                    Ok(next) => deadline.set(&*clock, next),
                    Err(e) => {
                        yield Err(Ended::Denied(e));
                        break;
                    }
                },
            }
        }
    }
}
