//! The raw, unvalidated layers as figment reads them, and their built-in defaults.
use serde::{Deserialize, Serialize};

use super::{operations, realtime, safety, DigestSchedule, DEFAULT_WEBHOOK_RETRY_SCHEDULE};

/// `a,b` (environment) or `["a", "b"]` (TOML).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum StringOrList {
    List(Vec<String>),
    One(String),
}

impl StringOrList {
    pub(super) fn items(self) -> Vec<String> {
        match self {
            StringOrList::List(l) => l,
            StringOrList::One(s) => s.split(',').map(str::to_string).collect(),
        }
    }
}

/// The raw, unvalidated layers as figment sees them.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Raw {
    pub(super) bind: String,
    pub(super) database_url: String,
    pub(super) public_url: Option<String>,
    pub(super) secret: Option<String>,
    pub(super) secret_previous: Option<StringOrList>,
    pub(super) log: String,
    pub(super) session_ttl_days: i64,
    pub(super) cors_origins: String,
    pub(super) graphql_max_depth: usize,
    pub(super) graphql_max_complexity: usize,
    pub(super) db_pool_size: u32,
    pub(super) plans: Option<String>,
    pub(super) smtp_url: Option<String>,
    pub(super) smtp_from: String,
    pub(super) signup_url: Option<String>,
    pub(super) invitation_ttl_days: i64,
    pub(super) max_pending_invitations: u64,
    pub(super) invitation_sends_per_hour: u64,
    pub(super) referral_cookie_days: i64,
    pub(super) upgrade_url: Option<String>,
    pub(super) stripe_webhook_secret: Option<String>,
    pub(super) webhook_allow_http: bool,
    pub(super) webhook_allow_private: bool,
    pub(super) webhook_retry_schedule: StrOrNum,
    pub(super) webhook_retention_days: i64,
    pub(super) webhook_concurrency: usize,
    pub(super) attribution_window_days: i64,
    pub(super) activation_events: String,
    pub(super) digest_schedule: String,
    pub(super) notification_email_minutes: i64,
    pub(super) benchmarks_cache_seconds: i64,
    pub(super) benchmarks_precompute: bool,
    #[serde(flatten)]
    pub(super) safety: safety::RawSafety,
    #[serde(flatten)]
    pub(super) operations: operations::RawOperations,
    #[serde(flatten)]
    pub(super) realtime: realtime::RawRealtime,
}

/// An environment value figment may have read as a number (`KFACTOR_X=5`) or a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum StrOrNum {
    Num(u64),
    Str(String),
}

impl StrOrNum {
    pub(super) fn text(&self) -> String {
        match self {
            StrOrNum::Num(n) => n.to_string(),
            StrOrNum::Str(s) => s.clone(),
        }
    }
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://kfactor.db?mode=rwc".into(),
            public_url: None,
            secret: None,
            secret_previous: None,
            log: "info".into(),
            session_ttl_days: 30,
            cors_origins: "*".into(),
            graphql_max_depth: 16,
            graphql_max_complexity: 5000,
            db_pool_size: 8,
            plans: None,
            smtp_url: None,
            smtp_from: "kfactor <no-reply@kfactor.invalid>".into(),
            signup_url: None,
            invitation_ttl_days: 7,
            max_pending_invitations: 100,
            invitation_sends_per_hour: 100,
            referral_cookie_days: 90,
            upgrade_url: None,
            stripe_webhook_secret: None,
            webhook_allow_http: false,
            webhook_allow_private: false,
            webhook_retry_schedule: StrOrNum::Str(DEFAULT_WEBHOOK_RETRY_SCHEDULE.into()),
            webhook_retention_days: 30,
            webhook_concurrency: 256,
            attribution_window_days: 30,
            activation_events: "project_created,comment_added".into(),
            digest_schedule: DigestSchedule::DEFAULT.into(),
            notification_email_minutes: 15,
            benchmarks_cache_seconds: 300,
            benchmarks_precompute: true,
            safety: Default::default(),
            operations: Default::default(),
            realtime: Default::default(),
        }
    }
}
