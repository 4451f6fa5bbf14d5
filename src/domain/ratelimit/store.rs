//! Token buckets (GCRA: one "theoretical arrival time" per key), in process or in the
//! database.
//!
//! A bucket of `count` per `period` lets `count` events through at once and one more every
//! `period / count`. Its whole state is one integer, the time (ms) at which it is full
//! again, so the database form is a single upsert that both checks and takes.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, Ordering},
        Mutex,
    },
};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::config::Rate;

/// Milliseconds per token, and the burst window, of a rate.
fn shape(rate: Rate) -> (i64, i64) {
    let period = rate.period.as_millis() as i64;
    ((period / rate.count as i64).max(1), period)
}

/// The decision on one take: allowed, or the milliseconds until it would be.
pub(super) fn decide(tat: Option<i64>, now: i64, rate: Rate, cost: u32) -> Result<i64, i64> {
    let (interval, burst) = shape(rate);
    let start = tat.map_or(now, |t| t.max(now));
    let next = start + interval * cost as i64;
    if next - now <= burst {
        Ok(next)
    } else {
        Err(next - now - burst)
    }
}

const SHARDS: usize = 16;
/// A shard past this many keys drops the ones that are full again (they equal no entry).
const SHARD_PRUNE_AT: usize = 8_192;

/// In-process buckets, sharded so concurrent requests rarely share a lock.
#[derive(Debug)]
pub(super) struct Memory {
    shards: [Mutex<HashMap<String, i64>>; SHARDS],
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl Memory {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, i64>> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.shards[h as usize % SHARDS]
    }

    /// Takes `cost` tokens: Ok, or Err(ms until they would be there).
    pub(super) fn take(&self, key: &str, now: i64, rate: Rate, cost: u32) -> Result<(), i64> {
        let mut map = self.shard(key).lock().expect("rate limit shard");
        let next = decide(map.get(key).copied(), now, rate, cost)?;
        if map.len() >= SHARD_PRUNE_AT && !map.contains_key(key) {
            map.retain(|_, tat| *tat > now);
        }
        map.insert(key.to_string(), next);
        Ok(())
    }

    /// Gives back what a take took (the event turned out not to count).
    pub(super) fn refund(&self, key: &str, rate: Rate, cost: u32) {
        let (interval, _) = shape(rate);
        if let Some(tat) = self
            .shard(key)
            .lock()
            .expect("rate limit shard")
            .get_mut(key)
        {
            *tat -= interval * cost as i64;
        }
    }
}

/// Buckets in the `rate_limits` table, shared by every instance on the database
/// (PostgreSQL; SQLite serves one instance and keeps its buckets in [`Memory`]).
#[derive(Debug)]
pub(super) struct Shared {
    db: DatabaseConnection,
    last_prune: AtomicI64,
}

/// Expired rows are deleted at most this often (ms), by whichever instance notices first.
const PRUNE_EVERY: i64 = 10 * 60 * 1000;

impl Shared {
    pub(super) fn new(db: DatabaseConnection) -> Shared {
        Shared {
            db,
            last_prune: AtomicI64::new(0),
        }
    }

    fn stmt(&self, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
    }

    /// Takes `cost` tokens in one statement: the upsert only writes (and returns a row) when
    /// the bucket has room, so concurrent takes on any instance never overdraw it.
    pub(super) async fn take(
        &self,
        key: &str,
        now: i64,
        rate: Rate,
        cost: u32,
    ) -> Result<Result<(), i64>, sea_orm::DbErr> {
        let (interval, burst) = shape(rate);
        let step = interval * cost as i64;
        let taken = self
            .db
            .query_one_raw(self.stmt(
                "INSERT INTO rate_limits (key, tat_ms) VALUES ($1, $2 + $3) \
                 ON CONFLICT (key) DO UPDATE SET tat_ms = \
                   (CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END) + $3 \
                 WHERE (CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END) + $3 - $2 <= $4 \
                 RETURNING tat_ms",
                vec![key.into(), now.into(), step.into(), burst.into()],
            ))
            .await?;
        self.maybe_prune(now);
        if taken.is_some() {
            return Ok(Ok(()));
        }
        let tat: Option<i64> = self
            .db
            .query_one_raw(self.stmt(
                "SELECT tat_ms FROM rate_limits WHERE key = $1",
                vec![key.into()],
            ))
            .await?
            .map(|r| r.try_get("", "tat_ms"))
            .transpose()?;
        // Refused: how long until it would fit. (If a refund freed room in between, the
        // caller is told to retry at once rather than looping here.)
        Ok(Err(decide(tat, now, rate, cost).err().unwrap_or(1)))
    }

    /// Gives back what a take took.
    pub(super) async fn refund(
        &self,
        key: &str,
        rate: Rate,
        cost: u32,
    ) -> Result<(), sea_orm::DbErr> {
        let (interval, _) = shape(rate);
        self.db
            .execute_raw(self.stmt(
                "UPDATE rate_limits SET tat_ms = tat_ms - $2 WHERE key = $1",
                vec![key.into(), (interval * cost as i64).into()],
            ))
            .await?;
        Ok(())
    }

    /// Deletes buckets that are full again (worth the same as no row), in the background.
    fn maybe_prune(&self, now: i64) {
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let db = self.db.clone();
        let stmt = self.stmt(
            "DELETE FROM rate_limits WHERE tat_ms <= $1",
            vec![now.into()],
        );
        tokio::spawn(async move {
            if let Err(e) = db.execute_raw(stmt).await {
                tracing::warn!(error = %e, "pruning rate limit buckets failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_count_at_once_then_one_per_interval() {
        let rate = Rate::new(3, Duration::from_secs(60));
        let m = Memory::default();
        for _ in 0..3 {
            assert!(m.take("k", 0, rate, 1).is_ok());
        }
        assert_eq!(m.take("k", 0, rate, 1), Err(20_000), "one token every 20 s");
        assert_eq!(m.take("k", 19_999, rate, 1), Err(1));
        assert!(m.take("k", 20_000, rate, 1).is_ok());
        assert!(m.take("k", 20_000, rate, 1).is_err());
        // A full period later the bucket is full again.
        for _ in 0..3 {
            assert!(m.take("k", 80_000, rate, 1).is_ok());
        }
        assert!(m.take("other", 0, rate, 3).is_ok(), "keys are independent");
        assert!(
            m.take("big", 0, rate, 4).is_err(),
            "more than the bucket never fits"
        );
    }

    #[test]
    fn refunds_give_tokens_back() {
        let rate = Rate::new(2, Duration::from_secs(10));
        let m = Memory::default();
        assert!(m.take("k", 0, rate, 1).is_ok());
        assert!(m.take("k", 0, rate, 1).is_ok());
        assert!(m.take("k", 0, rate, 1).is_err());
        m.refund("k", rate, 1);
        assert!(m.take("k", 0, rate, 1).is_ok());
    }
}
