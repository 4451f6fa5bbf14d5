//! Giving memory back to the operating system after a storm of sockets. Thousands of
//! subscribers connecting at once each hold a database check in flight (≈ 14 kB apiece,
//! measured with heaptrack), and thousands leaving free everything they held; the allocator
//! keeps what was freed for reuse, returning it only slowly and only while it is called,
//! so without this an instance's RSS stays near its busiest moment's.
use std::time::Duration;

use super::Sockets;

/// How often the opened and closed sockets are counted.
const EVERY: Duration = Duration::from_secs(5);

/// Sockets opened or closed (since the last purge) worth a purge: fewer free too little to
/// matter, and purging walks every arena.
const AT_LEAST: usize = 256;

/// Purges the allocator once a storm settled: after at least [`AT_LEAST`] sockets opened or
/// closed (and at least a quarter as many as are open, so a steady churn on a busy
/// instance does not purge every few seconds), at the first quiet count. Runs until aborted.
pub async fn give_back(sockets: Sockets) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = 0;
    loop {
        tick.tick().await;
        let changed = sockets.take_changed();
        pending += changed;
        let quiet = changed < AT_LEAST / 4;
        if quiet && pending >= AT_LEAST.max(sockets.open() / 4) {
            let _ = tokio::task::spawn_blocking(crate::alloc::purge).await;
            tracing::debug!(pending, "returned freed memory to the operating system");
            pending = 0;
        } else if quiet {
            // A trickle: forget it rather than add it up into a purge days later.
            pending = 0;
        }
    }
}
