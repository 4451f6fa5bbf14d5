//! Connections. SQLite gets one write connection beside a read pool: SQLite allows a single
//! writer, and SeaORM's transactions begin DEFERRED, so two pooled writers that both read
//! first would collide ("database is locked"). Serializing writes in-process avoids that and
//! keeps limit checks race-free. PostgreSQL uses one pool for both, with row locks.
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    TransactionTrait,
};

use crate::config::Config;

pub mod bus;
mod joined;
pub mod statements;
mod tx;

pub use joined::{unjoin, Joined};
pub use tx::Tx;

/// The database handles of a running server.
#[derive(Clone, Debug)]
pub struct Db {
    /// Every write transaction runs here (one connection on SQLite).
    pub write: DatabaseConnection,
    /// Reads that need no transaction.
    pub read: DatabaseConnection,
}

impl Db {
    /// Opens the pools described by the configuration.
    pub async fn connect(cfg: &Config) -> Result<Db, DbErr> {
        if cfg.is_sqlite() {
            let mut write = connect_sqlite(sqlite_options(&cfg.database_url, 1)).await?;
            let mut read =
                connect_sqlite(sqlite_read_options(&cfg.database_url, cfg.db_pool_size)).await?;
            statements::count_on(&mut write);
            statements::count_on(&mut read);
            Ok(Db { write, read })
        } else {
            let mut opts = ConnectOptions::new(cfg.database_url.clone());
            opts.max_connections(cfg.db_pool_size.max(2) * 2)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .sqlx_logging(false);
            let mut pool = Database::connect(opts).await?;
            statements::count_on(&mut pool);
            Ok(Db {
                write: pool.clone(),
                read: pool,
            })
        }
    }

    /// Which SQL dialect is behind these pools.
    pub fn backend(&self) -> DatabaseBackend {
        self.write.get_database_backend()
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<sea_orm::DatabaseTransaction, DbErr> {
        self.write.begin().await
    }

    /// Brings the schema up to date, all pending migrations in one transaction (a crash
    /// leaves none half-applied). Instances that start at once on one database serialize
    /// here: the first migrates, the others wait and then find nothing to do.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        let backend = self.backend();
        if backend == DatabaseBackend::Sqlite {
            // The transaction's first statement must be a write: a deferred transaction
            // that read first could not upgrade once another process had migrated.
            self.write
                .execute_unprepared(
                    "CREATE TABLE IF NOT EXISTS kfactor_migration_lock \
                     (id INTEGER PRIMARY KEY, locked_at TEXT NOT NULL)",
                )
                .await?;
        }
        let txn = self.write.begin().await?;
        let lock = match backend {
            DatabaseBackend::Sqlite => {
                "INSERT INTO kfactor_migration_lock (id, locked_at) VALUES (1, CURRENT_TIMESTAMP) \
                 ON CONFLICT (id) DO UPDATE SET locked_at = excluded.locked_at"
            }
            // Released at commit or rollback. The key is b"kfactor\0" as a big-endian i64.
            _ => "SELECT pg_advisory_xact_lock(7738980089465893376)",
        };
        txn.execute_unprepared(lock).await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await
    }

    /// True when both pools answer.
    pub async fn ping(&self) -> bool {
        self.read.ping().await.is_ok() && self.write.ping().await.is_ok()
    }
}

/// How long a SQLite read connection may sit unused before the pool closes it. A storm
/// (thousands of sockets subscribing at once, each checked against the database) opens the
/// whole read pool, and each connection holds SQLite's page cache and a thread; sqlx's
/// default (10 minutes) kept them long after the storm (bench/RESULTS.md). Opening a SQLite
/// connection again is a file open, no network round trip, so the pool may shrink soon: the
/// reaper looks every timeout, so a connection goes 10–20 s after its last use (the last
/// one too, opened again at once to keep the minimum of one).
const SQLITE_READ_IDLE: Duration = Duration::from_secs(10);

/// Opens a SQLite pool. Processes opening one brand-new file at once race to switch it to
/// WAL, and SQLite answers some of them SQLITE_BUSY at once rather than waiting out
/// `busy_timeout` (it would risk a deadlock), so a busy open is tried again, a few times, after
/// a growing pause.
async fn connect_sqlite(opts: ConnectOptions) -> Result<sea_orm::DatabaseConnection, DbErr> {
    let mut pause = Duration::from_millis(25);
    let mut tries = 1;
    loop {
        match Database::connect(opts.clone()).await {
            Err(e) if tries < 8 && is_busy(&e) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                tries += 1;
            }
            done => return done,
        }
    }
}

/// SQLITE_BUSY (5): another connection holds the lock.
fn is_busy(e: &DbErr) -> bool {
    let (DbErr::Conn(sea_orm::RuntimeErr::SqlxError(sqlx))
    | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(sqlx))) = e
    else {
        return false;
    };
    sqlx.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "5")
}

/// The read pool's options: up to `pool` connections, closed when idle (down to one).
fn sqlite_read_options(url: &str, pool: u32) -> ConnectOptions {
    let mut opts = sqlite_options(url, pool);
    opts.idle_timeout(SQLITE_READ_IDLE);
    opts
}

fn sqlite_options(url: &str, pool: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(pool)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
            // WAL: readers never block the writer. synchronous=NORMAL in WAL mode survives a
            // process crash (kill -9) without losing a committed transaction; only an OS crash
            // or power loss may drop the last commits.
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read pool closes idle connections soon, keeping one; the writer is left alone.
    #[test]
    fn sqlite_read_connections_close_when_idle() {
        let read = sqlite_read_options("sqlite::memory:", 8);
        assert_eq!(read.get_idle_timeout(), Some(Some(SQLITE_READ_IDLE)));
        assert_eq!(read.get_min_connections(), Some(1));
        assert_eq!(read.get_max_connections(), Some(8));
        assert_eq!(
            sqlite_options("sqlite::memory:", 1).get_idle_timeout(),
            None
        );
    }
}
