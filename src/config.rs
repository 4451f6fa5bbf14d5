//! Layered configuration: embedded defaults → `kfactor.toml` → `KFACTOR_*` environment.
//!
//! Validation happens once, here, so the rest of the server works with typed values. A bad
//! value is reported as one line naming the key (`KFACTOR_BIND: …`) and the process exits 2.
use std::{fmt, net::SocketAddr, path::Path};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};

mod digest;
mod operations;
mod raw;
mod realtime;
mod safety;
mod sources;
pub use digest::DigestSchedule;
pub use operations::{Operations, IDEMPOTENCY_REPLAY_HOURS};
use raw::{Raw, StringOrList};
pub use realtime::{Realtime, DEFAULT_SUBSCRIBER_BACKLOG};
pub use safety::{Rate, Safety};

/// The validated server configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub database_url: String,
    /// Base of every link the server prints, without a trailing slash.
    pub public_url: String,
    /// Server secret for derived tokens; `None` means "generate once and keep in the database".
    pub secret: Option<Secret>,
    /// Earlier server secrets, newest first: they still open what they sealed and verify
    /// what they derived; nothing new is made with them.
    pub secret_previous: Vec<Secret>,
    /// tracing filter, e.g. `info,kfactor=debug`.
    pub log: String,
    /// Sliding lifetime of a session.
    pub session_ttl_days: i64,
    /// Origins allowed by CORS; `*` allows any (bearer tokens, no cookies, so this is safe).
    pub cors_origins: Vec<String>,
    /// Maximum depth of a GraphQL query.
    pub graphql_max_depth: usize,
    /// Maximum complexity of a GraphQL query.
    pub graphql_max_complexity: usize,
    /// Size of the read connection pool.
    pub db_pool_size: u32,
    /// Path of a plan catalog replacing the embedded `plans.toml`.
    pub plans: Option<std::path::PathBuf>,
    /// SMTP server (`smtp://`, `smtp://…?tls=required`, `smtps://`); `None` logs emails.
    pub smtp_url: Option<String>,
    /// The From address of emails.
    pub smtp_from: String,
    /// Where sign-up links point; `None` means the server's own page (see [`Config::signup_url`]).
    pub signup_url: Option<String>,
    /// How long an invitation is valid after its last send.
    pub invitation_ttl_days: i64,
    /// Most pending invitations an organization may have.
    pub max_pending_invitations: u64,
    /// Most invitation sends (first sends and re-sends) per user per hour.
    pub invitation_sends_per_hour: u64,
    /// Lifetime of the referral cookie set by `/r/{code}`.
    pub referral_cookie_days: i64,
    /// Upgrade (checkout) URL template with `{organization}`, `{plan}` and `{feature}`;
    /// `None` = the default.
    pub upgrade_url: Option<String>,
    /// Signing secret (`whsec_…`) of the Stripe webhook endpoint; `None` turns
    /// `POST /billing/stripe` off.
    pub stripe_webhook_secret: Option<Secret>,
    /// Allow `http://` webhook URLs (development, tests); otherwise https is required.
    pub webhook_allow_http: bool,
    /// Allow webhook deliveries to loopback, private, link-local, CGNAT and metadata
    /// addresses (tests, on-premise); otherwise they are refused at connect time.
    pub webhook_allow_private: bool,
    /// Delay before each attempt of a delivery; after the last, the delivery is FAILED.
    pub webhook_retry_schedule: Vec<std::time::Duration>,
    /// Webhook messages with all deliveries finished are pruned, with their deliveries and
    /// attempts, this many days after they were written (`crate::retention`).
    pub webhook_retention_days: i64,
    /// Most webhook requests in flight at once (per instance).
    pub webhook_concurrency: usize,
    /// The growth metrics' attribution window W (METRICS.md).
    pub attribution_window: chrono::Duration,
    /// What activates a user (METRICS.md: a first project or comment by default).
    pub activation_events: Vec<ActivationEvent>,
    /// Account safety and abuse limits (`config/safety.rs`).
    pub safety: Safety,
    /// Live subscriptions over WebSocket (`config/realtime.rs`).
    pub realtime: Realtime,
    /// When the weekly digest goes out; `None`: never.
    pub digest_schedule: Option<DigestSchedule>,
    /// At most one notification email per recipient per this interval.
    pub notification_email_interval: chrono::Duration,
    /// How long one computation of the cross-organization benchmarks of a window is served
    /// (per instance); zero computes every answer afresh.
    pub benchmarks_cache: chrono::Duration,
    /// Whether the precompute worker keeps the dashboard's preset windows of the benchmarks
    /// computed ahead (refreshed before they expire), so no answer of theirs waits for one.
    pub benchmarks_precompute: bool,
    /// Retention, the link cache's budget and the metrics endpoint (`config/operations.rs`).
    pub operations: Operations,
}

/// An action that can count as a user's activation (`KFACTOR_ACTIVATION_EVENTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationEvent {
    /// Creating a project.
    ProjectCreated,
    /// Commenting on a project.
    CommentAdded,
    /// Sending an invitation.
    InvitationSent,
    /// Creating a shared link.
    SharedLinkCreated,
}

impl ActivationEvent {
    const ALL: [(ActivationEvent, &'static str); 4] = [
        (ActivationEvent::ProjectCreated, "project_created"),
        (ActivationEvent::CommentAdded, "comment_added"),
        (ActivationEvent::InvitationSent, "invitation_sent"),
        (ActivationEvent::SharedLinkCreated, "shared_link_created"),
    ];

    /// Parses a comma-separated list such as `project_created,comment_added`.
    pub fn parse_list(s: &str) -> Result<Vec<ActivationEvent>, String> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some((e, _)) = Self::ALL.iter().find(|(_, n)| *n == name) else {
                let valid: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
                return Err(format!(
                    "{name:?} is not an activation event; use some of {}",
                    valid.join(", ")
                ));
            };
            if !out.contains(e) {
                out.push(*e);
            }
        }
        if out.is_empty() {
            return Err("must name at least one activation event".into());
        }
        Ok(out)
    }
}

/// A secret that never prints itself.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The default retry schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_WEBHOOK_RETRY_SCHEDULE: &str = "0,5,300,1800,7200,18000,36000,36000";

/// Parses a retry schedule: comma-separated seconds, 1 to 20 entries, each at most a week.
pub fn parse_retry_schedule(s: &str) -> Result<Vec<std::time::Duration>, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.is_empty() || parts.len() > 20 {
        return Err("must list 1 to 20 delays".into());
    }
    parts
        .iter()
        .map(|p| match p.parse::<u64>() {
            Ok(n) if n <= 7 * 24 * 3600 => Ok(std::time::Duration::from_secs(n)),
            _ => Err(format!(
                "{p:?} is not a number of seconds (0..=604800); expected e.g. \"0,5,300\""
            )),
        })
        .collect()
}

/// A configuration error: which key, where it was set, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{given_as}: {message}")]
pub struct ConfigError {
    /// The setting, e.g. `bind`.
    pub key: String,
    /// The setting as it was given: `KFACTOR_BIND`, or `` `bind` in kfactor.toml ``.
    pub given_as: String,
    /// What is wrong, for a human.
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        given_as: format!("KFACTOR_{}", key.to_uppercase()),
        message: message.into(),
    }
}

impl Config {
    /// Loads the layers (defaults, the TOML file if it exists, then the environment) and
    /// validates them.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        Self::load_from(file, false)
    }

    /// Like [`Config::load`]; with `required`, a missing file is an error (it was named
    /// explicitly).
    pub fn load_from(file: &Path, required: bool) -> Result<Config, ConfigError> {
        if required && !file.exists() {
            return Err(ConfigError {
                key: "config".into(),
                given_as: "KFACTOR_CONFIG".into(),
                message: format!("{} does not exist", file.display()),
            });
        }
        let known: Vec<String> = match serde_json::to_value(Raw::default()) {
            Ok(serde_json::Value::Object(keys)) => keys.keys().cloned().collect(),
            _ => Vec::new(),
        };
        sources::check_known_keys(file, &known)?;
        let figment = Figment::from(Serialized::defaults(Raw::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("KFACTOR_"));
        let raw: Raw = figment
            .extract()
            .map_err(|e| sources::extraction(&figment, file, e))?;
        Self::validate(raw).map_err(|mut e| {
            e.given_as = sources::describe(&figment, file, &e.key);
            e
        })
    }

    /// A configuration for tests and embedding: defaults, with the given database.
    pub fn for_database(database_url: &str) -> Config {
        let raw = Raw {
            database_url: database_url.into(),
            ..Raw::default()
        };
        Self::validate(raw).expect("default configuration is valid")
    }

    fn validate(raw: Raw) -> Result<Config, ConfigError> {
        let bind: SocketAddr = raw.bind.parse().map_err(|_| {
            err(
                "bind",
                format!("{:?} is not a socket address like 127.0.0.1:8080", raw.bind),
            )
        })?;
        let db = raw.database_url.trim().to_string();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(err(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        let public_url = match raw.public_url {
            Some(u) if !u.trim().is_empty() => {
                let u = u.trim().trim_end_matches('/').to_string();
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
                    return Err(err("public_url", format!("{u:?} must be an http(s) URL")));
                }
                u
            }
            _ => {
                let host = if bind.ip().is_unspecified() {
                    "localhost".to_string()
                } else {
                    bind.ip().to_string()
                };
                format!("http://{host}:{}", bind.port())
            }
        };
        let secret = match raw.secret {
            Some(s) if !s.is_empty() => {
                if s.len() < 32 {
                    return Err(err("secret", "must be at least 32 characters long"));
                }
                Some(Secret(s.into_bytes()))
            }
            _ => None,
        };
        let mut secret_previous = Vec::new();
        for s in raw
            .secret_previous
            .map(StringOrList::items)
            .unwrap_or_default()
        {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            if s.len() < 32 {
                return Err(err(
                    "secret_previous",
                    "each secret must be at least 32 characters long",
                ));
            }
            secret_previous.push(Secret(s.as_bytes().to_vec()));
        }
        if !(1..=3650).contains(&raw.session_ttl_days) {
            return Err(err("session_ttl_days", "must be between 1 and 3650"));
        }
        if raw.graphql_max_depth < 13 {
            return Err(err(
                "graphql_max_depth",
                "must be at least 13 so introspection keeps working",
            ));
        }
        if raw.graphql_max_complexity < 1000 {
            return Err(err(
                "graphql_max_complexity",
                "must be at least 1000 so introspection keeps working",
            ));
        }
        if raw.db_pool_size == 0 {
            return Err(err("db_pool_size", "must be at least 1"));
        }
        let smtp_url = raw.smtp_url.filter(|u| !u.trim().is_empty());
        if let Some(u) = &smtp_url {
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                return Err(err("smtp_url", "must start with smtp:// or smtps://"));
            }
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(u)
                .map_err(|e| err("smtp_url", e.to_string()))?;
        }
        if raw.smtp_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                "smtp_from",
                "must be an address like \"kfactor <no-reply@example.com>\"",
            ));
        }
        let signup_url = match raw.signup_url.filter(|u| !u.trim().is_empty()) {
            Some(u)
                if (u.starts_with("http://") || u.starts_with("https://"))
                    && url::Url::parse(&u).is_ok() =>
            {
                Some(u)
            }
            Some(_) => return Err(err("signup_url", "must be an http(s) URL")),
            None => None,
        };
        for (key, v) in [
            ("invitation_ttl_days", raw.invitation_ttl_days),
            ("referral_cookie_days", raw.referral_cookie_days),
        ] {
            if v < 1 {
                return Err(err(key, "must be at least 1"));
            }
        }
        if raw.max_pending_invitations == 0 || raw.invitation_sends_per_hour == 0 {
            return Err(err(
                "invitation_sends_per_hour",
                "invitation limits must be at least 1",
            ));
        }
        let stripe_webhook_secret = match raw.stripe_webhook_secret.map(|s| s.trim().to_string()) {
            Some(s) if s.is_empty() => None,
            Some(s) if s.starts_with("whsec_") && s.len() > 10 => Some(Secret(s.into_bytes())),
            Some(_) => {
                return Err(err(
                    "stripe_webhook_secret",
                    "must be the endpoint's signing secret from Stripe, starting with whsec_",
                ))
            }
            None => None,
        };
        let webhook_retry_schedule = parse_retry_schedule(&raw.webhook_retry_schedule.text())
            .map_err(|m| err("webhook_retry_schedule", m))?;
        if raw.webhook_retention_days < 1 {
            return Err(err("webhook_retention_days", "must be at least 1"));
        }
        if !(1..=10_000).contains(&raw.webhook_concurrency) {
            return Err(err("webhook_concurrency", "must be between 1 and 10000"));
        }
        if !(1..=365).contains(&raw.attribution_window_days) {
            return Err(err("attribution_window_days", "must be between 1 and 365"));
        }
        let activation_events = ActivationEvent::parse_list(&raw.activation_events)
            .map_err(|m| err("activation_events", m))?;
        let digest_schedule =
            DigestSchedule::parse(&raw.digest_schedule).map_err(|m| err("digest_schedule", m))?;
        if !(1..=1440).contains(&raw.notification_email_minutes) {
            return Err(err(
                "notification_email_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(0..=86_400).contains(&raw.benchmarks_cache_seconds) {
            return Err(err(
                "benchmarks_cache_seconds",
                "must be between 0 (off) and 86400",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&raw.log)
            .map_err(|e| err("log", format!("invalid filter: {e}")))?;
        let cors_origins = raw
            .cors_origins
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(Config {
            bind,
            database_url: db,
            public_url,
            secret,
            secret_previous,
            log: raw.log,
            session_ttl_days: raw.session_ttl_days,
            cors_origins,
            graphql_max_depth: raw.graphql_max_depth,
            graphql_max_complexity: raw.graphql_max_complexity,
            db_pool_size: raw.db_pool_size,
            plans: raw.plans.filter(|p| !p.trim().is_empty()).map(Into::into),
            smtp_url,
            smtp_from: raw.smtp_from,
            signup_url,
            invitation_ttl_days: raw.invitation_ttl_days,
            max_pending_invitations: raw.max_pending_invitations,
            invitation_sends_per_hour: raw.invitation_sends_per_hour,
            referral_cookie_days: raw.referral_cookie_days,
            upgrade_url: raw.upgrade_url.filter(|u| !u.trim().is_empty()),
            stripe_webhook_secret,
            webhook_allow_http: raw.webhook_allow_http,
            webhook_allow_private: raw.webhook_allow_private,
            webhook_retry_schedule,
            webhook_retention_days: raw.webhook_retention_days,
            webhook_concurrency: raw.webhook_concurrency,
            attribution_window: chrono::Duration::days(raw.attribution_window_days),
            activation_events,
            digest_schedule,
            notification_email_interval: chrono::Duration::minutes(raw.notification_email_minutes),
            benchmarks_cache: chrono::Duration::seconds(raw.benchmarks_cache_seconds),
            benchmarks_precompute: raw.benchmarks_precompute,
            safety: raw.safety.validate()?,
            operations: raw.operations.validate()?,
            realtime: raw.realtime.validate()?,
        })
    }

    /// The sign-up page links point to: `KFACTOR_SIGNUP_URL`, else `PUBLIC_URL/signup`.
    pub fn signup_url(&self) -> String {
        self.signup_url
            .clone()
            .unwrap_or_else(|| format!("{}/signup", self.public_url))
    }

    /// The sign-up URL with query parameters appended to whatever query it has.
    pub fn signup_link(&self, params: &[(&str, &str)]) -> String {
        let base = self.signup_url();
        // Validated as an http(s) URL at start-up, so it parses.
        let Ok(mut url) = url::Url::parse(&base) else {
            return base;
        };
        url.query_pairs_mut().extend_pairs(params);
        url.into()
    }

    /// The upgrade (checkout) URL template: `KFACTOR_UPGRADE_URL`, else
    /// `PUBLIC_URL/upgrade?organization={organization}&plan={plan}&feature={feature}`.
    pub fn upgrade_url(&self) -> String {
        self.upgrade_url.clone().unwrap_or_else(|| {
            format!(
                "{}/upgrade?organization={{organization}}&plan={{plan}}&feature={{feature}}",
                self.public_url
            )
        })
    }

    /// True when the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

/// Percent-encodes a value for a query string (`application/x-www-form-urlencoded`).
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests;
