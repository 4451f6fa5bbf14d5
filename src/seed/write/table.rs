//! Buffered multi-row INSERTs in large transactions.
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Alias, Query},
    ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait, Value,
};
use uuid::Uuid;

use crate::seed::sim::Ms;

/// Most bound values per statement (SQLite allows 32,766; PostgreSQL 65,535).
const MAX_VALUES: usize = 30_000;
/// Rows per transaction.
const ROWS_PER_TX: usize = 200_000;

pub(super) fn at(ms: Ms) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("time in range")
}

/// A time-ordered (v7) id for a row made at `ms`, derived from `key` so every run makes the
/// same ids (multiplying by an odd constant is a bijection on u128).
pub(super) fn derived(ms: Ms, key: u128) -> Uuid {
    let mixed = key
        .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        .to_be_bytes();
    let bytes: [u8; 10] = mixed[..10].try_into().expect("10 bytes");
    uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &bytes).into_uuid()
}

/// Buffers the rows of one table and flushes them in statements of at most [`MAX_VALUES`].
pub(super) struct Table {
    name: &'static str,
    cols: &'static [&'static str],
    rows: Vec<Vec<Value>>,
    written: u64,
}

impl Table {
    pub(super) fn new(name: &'static str, cols: &'static [&'static str]) -> Table {
        Table {
            name,
            cols,
            rows: Vec::new(),
            written: 0,
        }
    }

    pub(super) async fn push(&mut self, w: &mut Writer<'_>, row: Vec<Value>) -> Result<(), DbErr> {
        debug_assert_eq!(row.len(), self.cols.len(), "{}", self.name);
        self.rows.push(row);
        if self.rows.len() * self.cols.len() >= MAX_VALUES {
            self.flush(w).await?;
        }
        Ok(())
    }

    /// Flushes what is left and counts the table into `out`.
    pub(super) async fn done(
        mut self,
        w: &mut Writer<'_>,
        out: &mut Vec<(&'static str, u64)>,
    ) -> Result<(), DbErr> {
        self.flush(w).await?;
        out.push((self.name, self.written));
        Ok(())
    }

    async fn flush(&mut self, w: &mut Writer<'_>) -> Result<(), DbErr> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut q = Query::insert();
        q.into_table(Alias::new(self.name))
            .columns(self.cols.iter().map(|c| Alias::new(*c)));
        let n = self.rows.len();
        for row in self.rows.drain(..) {
            q.values_panic(row.into_iter().map(Into::into));
        }
        w.exec(&q, n)
            .await
            .map_err(|e| DbErr::Custom(format!("writing {}: {e}", self.name)))?;
        self.written += n as u64;
        Ok(())
    }
}

/// Statements go into a transaction that is committed every [`ROWS_PER_TX`] rows.
pub(super) struct Writer<'a> {
    db: &'a DatabaseConnection,
    txn: Option<sea_orm::DatabaseTransaction>,
    in_tx: usize,
}

impl Writer<'_> {
    async fn exec(
        &mut self,
        q: &sea_orm::sea_query::InsertStatement,
        rows: usize,
    ) -> Result<(), DbErr> {
        if self.txn.is_none() {
            self.txn = Some(self.db.begin().await?);
        }
        self.txn.as_ref().expect("open").execute(q).await?;
        self.in_tx += rows;
        if self.in_tx >= ROWS_PER_TX {
            self.commit().await?;
        }
        Ok(())
    }

    pub(super) async fn commit(&mut self) -> Result<(), DbErr> {
        if let Some(t) = self.txn.take() {
            t.commit().await?;
        }
        self.in_tx = 0;
        Ok(())
    }
}

impl<'a> Writer<'a> {
    pub(super) fn new(db: &'a DatabaseConnection) -> Writer<'a> {
        Writer {
            db,
            txn: None,
            in_tx: 0,
        }
    }
}
