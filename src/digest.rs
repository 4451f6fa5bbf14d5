//! The digest scheduler: a worker that runs the weekly digest once it is due (see
//! [`crate::domain::digest`]). Every instance runs one; the digest rows make sure each
//! organization's digest is written once, however many instances race for it.
use std::{sync::Arc, time::Duration};

use crate::domain::{digest, Services};

/// How often the worker looks at the clock (and at whether the week is done).
pub const POLL: Duration = Duration::from_secs(30);

/// Runs until `stop` turns true: checks every [`POLL`] (or when woken) whether a digest is
/// due and not done yet, and runs it.
pub async fn run(svc: Arc<Services>, mut stop: tokio::sync::watch::Receiver<bool>) {
    if svc.config.digest_schedule.is_none() {
        return;
    }
    while !*stop.borrow() {
        match digest::run_due(&svc).await {
            Ok(Some(r)) if !r.already_done => tracing::info!(
                week = ?r.week_start, digests = r.digests, emails = r.emails,
                "weekly digest written"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "weekly digest failed; retrying"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = svc.bus.digest_woken() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
