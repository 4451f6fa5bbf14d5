//! Counting the SQL statements one request runs, so the read path's statement budget can be
//! measured (the `Server-Timing` header, a Prometheus histogram) and enforced by a test.
//!
//! The count lives in a task-local, not in the connection: the pools are shared by every
//! request and worker, and only statements run on behalf of a request belong to it. Work a
//! request hands to another task (the batch loaders) carries the count along with
//! [`carry`].
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use sea_orm::DatabaseConnection;

/// What one request spent in the database.
#[derive(Debug, Default)]
pub struct Spent {
    statements: AtomicU32,
    micros: AtomicU64,
}

impl Spent {
    /// Statements run.
    pub fn statements(&self) -> u32 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Time spent waiting for them (summed, so concurrent statements count twice).
    pub fn elapsed(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

tokio::task_local! {
    static SPENT: Arc<Spent>;
}

/// Runs `fut`, counting the statements it runs, and returns its output with the count.
pub async fn measure<F: Future>(fut: F) -> (F::Output, Arc<Spent>) {
    let spent = Arc::new(Spent::default());
    let out = SPENT.scope(spent.clone(), fut).await;
    (out, spent)
}

/// Wraps a future that will run in another task so that its statements count for the
/// request that spawned it.
pub fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let spent = SPENT.try_with(Arc::clone).ok();
    async move {
        match spent {
            Some(s) => SPENT.scope(s, fut).await,
            None => fut.await,
        }
    }
}

/// Makes every statement run through `conn` (and the transactions it begins) count for the
/// request it runs in. Call before the connection is cloned: clones made earlier do not
/// see it.
pub fn count_on(conn: &mut DatabaseConnection) {
    conn.set_metric_callback(|info| {
        let _ = SPENT.try_with(|s| {
            s.statements.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(info.elapsed.as_micros()).unwrap_or(u64::MAX);
            s.micros.fetch_add(micros, Ordering::Relaxed);
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_carried_future_counts_for_the_request_that_spawned_it() {
        let (_, spent) = measure(async {
            let _ = SPENT.try_with(|s| s.statements.fetch_add(1, Ordering::Relaxed));
            tokio::spawn(carry(async {
                let _ = SPENT.try_with(|s| s.statements.fetch_add(1, Ordering::Relaxed));
            }))
            .await
            .unwrap();
            // Not carried: counts for nobody.
            tokio::spawn(async {
                assert!(SPENT.try_with(|_| ()).is_err());
            })
            .await
            .unwrap();
        })
        .await;
        assert_eq!(spent.statements(), 2);
    }
}
