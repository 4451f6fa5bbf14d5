//! The rules of kfactor, one module per area. Nothing here knows about HTTP or GraphQL:
//! functions take typed input, decide, write in one transaction and return typed results or
//! a [`DomainError`].
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    clock::Clock,
    config::Config,
    db::{bus::Bus, Db},
};

pub mod access;
pub mod accounts;
pub mod activation;
pub mod activity;
pub mod api_keys;
pub mod benchmarks;
pub mod billing;
pub mod dashboard;
pub mod deletion;
pub mod digest;
pub mod entitlements;
pub mod error;
pub mod export;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod invitations;
pub mod metrics;
pub mod notifications;
pub mod orgs;
pub mod page;
pub mod passwords;
pub mod plans;
pub mod presence;
pub mod projects;
pub mod ratelimit;
pub mod records;
pub mod referrals;
pub mod sealing;
pub mod sharing;
pub mod tenancy;
pub mod tokens;
pub mod webhooks;

/// What a request spent in the database: the transport wraps each request in
/// [`statements::measure`] (the counting itself lives with the connections, `crate::db`).
pub use crate::db::statements;
pub use error::{DomainError, DomainResult};

/// Everything a domain operation may need: the database, the clock, configuration, keys and
/// the bus that announces committed changes.
pub struct Services {
    /// Database pools.
    pub db: Db,
    /// Injected time.
    pub clock: Arc<dyn Clock>,
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Keys derived from the server secret.
    pub keys: tokens::Keys,
    /// In-process fan-out of committed activity.
    pub bus: Bus,
    /// The plan catalog.
    pub plans: Arc<plans::Catalog>,
    /// The queue of share-link visits, group-committed by the visits worker.
    pub visits: crate::outbox::visits::VisitQueue,
    /// What shared links show, cached for the visit path (SQLite only).
    pub link_cache: sharing::LinkCache,
    /// Writes API keys' last-used times off the request path.
    pub api_key_usage: api_keys::UsageRecorder,
    /// The bounded Argon2 pool.
    pub hasher: passwords::Hasher,
    /// Rate-limit buckets.
    pub limiter: ratelimit::Limiter,
    /// The cross-organization benchmarks computed lately, by window.
    pub benchmarks: benchmarks::snapshot::Cache,
}

impl Services {
    /// The current time from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
