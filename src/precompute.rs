//! The benchmarks precompute worker: keeps the dashboard's preset windows of the
//! cross-organization benchmarks computed ahead of any request (see
//! [`crate::domain::benchmarks::precompute`]). Every instance runs one; each keeps its own.
use std::{sync::Arc, time::Duration};

use crate::domain::{benchmarks::precompute, Services};

/// Longest sleep between two looks at the clock (a moved test clock is noticed at the latest
/// then; tests wake the worker instead of waiting).
pub const POLL: Duration = Duration::from_secs(30);

/// After a failed pass, the wait before the next try.
const RETRY: Duration = Duration::from_secs(5);

/// Runs until `stop` turns true: refreshes the due windows, then sleeps until the next one is
/// due, or until woken (an opt-out change dropped them, a test moved the clock).
pub async fn run(svc: Arc<Services>, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        let wait = match precompute::refresh_due(&svc).await {
            Ok(None) => return,
            Ok(Some(pass)) => {
                if pass.computed > 0 {
                    tracing::info!(
                        windows = pass.computed,
                        ms = pass.took.as_millis() as u64,
                        next_due = %pass.next_due,
                        "benchmarks precomputed"
                    );
                }
                (pass.next_due - svc.now())
                    .to_std()
                    .unwrap_or_default()
                    .min(POLL)
            }
            Err(e) => {
                tracing::error!(error = ?e, "precomputing benchmarks failed; retrying");
                RETRY
            }
        };
        tokio::select! {
            _ = stop.changed() => {}
            _ = svc.benchmarks.woken() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
