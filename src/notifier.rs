//! The notification email batcher: a worker that, by the injected clock, writes the batches
//! that are due (see [`crate::domain::notifications::email`]). Every instance runs one; a
//! batch takes its notifications with a conditional update, so no two instances email the
//! same notification.
use std::{sync::Arc, time::Duration};

use crate::domain::{notifications::email, Services};

/// How often the worker looks at the clock.
pub const POLL: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true, writing due batches every [`POLL`].
pub async fn run(svc: Arc<Services>, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        match email::run_due(&svc).await {
            Ok(n) if n > 0 => tracing::info!(emails = n, "notification emails batched"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "batching notification emails failed; retrying"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
