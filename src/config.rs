//! Layered configuration: embedded defaults → `kfactor.toml` → `KFACTOR_*` environment.
//!
//! Validation happens once, here, so the rest of the server works with typed values. A bad
//! value is reported as one line naming the key (`KFACTOR_BIND: …`) and the process exits 2.
use std::{fmt, net::SocketAddr, path::Path};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

mod digest;
mod realtime;
mod safety;
pub use digest::DigestSchedule;
pub use realtime::Realtime;
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
    /// Finished deliveries and their messages are pruned after this many days.
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

/// `a,b` (environment) or `["a", "b"]` (TOML).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    List(Vec<String>),
    One(String),
}

impl StringOrList {
    fn items(self) -> Vec<String> {
        match self {
            StringOrList::List(l) => l,
            StringOrList::One(s) => s.split(',').map(str::to_string).collect(),
        }
    }
}

/// The raw, unvalidated layers as figment sees them.
#[derive(Debug, Serialize, Deserialize)]
struct Raw {
    bind: String,
    database_url: String,
    public_url: Option<String>,
    secret: Option<String>,
    secret_previous: Option<StringOrList>,
    log: String,
    session_ttl_days: i64,
    cors_origins: String,
    graphql_max_depth: usize,
    graphql_max_complexity: usize,
    db_pool_size: u32,
    plans: Option<String>,
    smtp_url: Option<String>,
    smtp_from: String,
    signup_url: Option<String>,
    invitation_ttl_days: i64,
    max_pending_invitations: u64,
    invitation_sends_per_hour: u64,
    referral_cookie_days: i64,
    upgrade_url: Option<String>,
    stripe_webhook_secret: Option<String>,
    webhook_allow_http: bool,
    webhook_allow_private: bool,
    webhook_retry_schedule: StrOrNum,
    webhook_retention_days: i64,
    webhook_concurrency: usize,
    attribution_window_days: i64,
    activation_events: String,
    digest_schedule: String,
    #[serde(flatten)]
    safety: safety::RawSafety,
    #[serde(flatten)]
    realtime: realtime::RawRealtime,
}

/// An environment value figment may have read as a number (`KFACTOR_X=5`) or a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    Num(u64),
    Str(String),
}

impl StrOrNum {
    fn text(&self) -> String {
        match self {
            StrOrNum::Num(n) => n.to_string(),
            StrOrNum::Str(s) => s.clone(),
        }
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
            safety: Default::default(),
            realtime: Default::default(),
        }
    }
}

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The environment variable name of the offending key, e.g. `KFACTOR_BIND`.
    pub key: String,
    /// What is wrong, for a human.
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: format!("KFACTOR_{}", key.to_uppercase()),
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
                key: "KFACTOR_CONFIG".into(),
                message: format!("{} does not exist", file.display()),
            });
        }
        let figment = Figment::from(Serialized::defaults(Raw::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("KFACTOR_"));
        let raw: Raw = figment.extract().map_err(|e| {
            let key = e.path.first().cloned().unwrap_or_else(|| "config".into());
            let message = e.to_string();
            err(
                &key,
                message
                    .lines()
                    .next()
                    .unwrap_or("invalid value")
                    .to_string(),
            )
        })?;
        Self::validate(raw)
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
            safety: raw.safety.validate()?,
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
mod tests {
    #[test]
    fn signup_links_respect_an_existing_query() {
        let mut c = Config::for_database("sqlite::memory:");
        assert_eq!(
            c.signup_link(&[("ref", "ab")]),
            "http://127.0.0.1:8080/signup?ref=ab"
        );
        c.signup_url = Some("https://app.example.com/start?lang=en".into());
        assert_eq!(
            c.signup_link(&[("invite", "t"), ("email", "a+b@x.io")]),
            "https://app.example.com/start?lang=en&invite=t&email=a%2Bb%40x.io"
        );
        assert_eq!(
            c.signup_link(&[("ref", "a b&c=d~é")]),
            "https://app.example.com/start?lang=en&ref=a+b%26c%3Dd%7E%C3%A9",
            "encoded by the url crate (form encoding)"
        );
    }

    use super::*;

    #[test]
    fn public_url_defaults_from_bind() {
        let c = Config::for_database("sqlite::memory:");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn previous_secrets_are_a_list_in_toml_or_comma_separated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kfactor.toml");
        let (a, b) = ("a".repeat(32), "b".repeat(40));
        std::fs::write(&file, format!("secret_previous = [\"{a}\", \"{b}\"]\n")).unwrap();
        let c = Config::load_from(&file, true).unwrap();
        let got: Vec<&[u8]> = c.secret_previous.iter().map(|s| s.0.as_slice()).collect();
        assert_eq!(got, [a.as_bytes(), b.as_bytes()]);
        let c = Config::validate(Raw {
            secret_previous: Some(StringOrList::One(format!(" {a} , {b},"))),
            ..Raw::default()
        })
        .unwrap();
        assert_eq!(c.secret_previous.len(), 2);
        let e = Config::validate(Raw {
            secret_previous: Some(StringOrList::One(format!("{a},tooshort-secret"))),
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "KFACTOR_SECRET_PREVIOUS");
        assert!(!format!("{e}").contains("tooshort"), "secrets never echo");
        assert!(!format!("{c:?}").contains(&a), "nor print");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = Config::validate(Raw {
            bind: "nope".into(),
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "KFACTOR_BIND");
        let e = Config::validate(Raw {
            secret: Some("short".into()),
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "KFACTOR_SECRET");
        assert!(!format!("{e}").contains("short"), "secrets never echo");
        let e = Config::validate(Raw {
            stripe_webhook_secret: Some("sk_live_not_a_signing_secret".into()),
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "KFACTOR_STRIPE_WEBHOOK_SECRET");
        assert!(!format!("{e}").contains("sk_live"), "secrets never echo");
        let c = Config::validate(Raw {
            stripe_webhook_secret: Some(" whsec_abcdefgh ".into()),
            ..Raw::default()
        })
        .unwrap();
        assert_eq!(c.stripe_webhook_secret.unwrap().0, b"whsec_abcdefgh");
    }

    #[test]
    fn growth_keys_are_validated() {
        let c = Config::for_database("sqlite::memory:");
        assert_eq!(c.attribution_window, chrono::Duration::days(30));
        assert_eq!(
            c.activation_events,
            [
                ActivationEvent::ProjectCreated,
                ActivationEvent::CommentAdded
            ]
        );
        let c = Config::validate(Raw {
            activation_events: " invitation_sent ,project_created".into(),
            ..Raw::default()
        })
        .unwrap();
        assert_eq!(
            c.activation_events,
            [
                ActivationEvent::InvitationSent,
                ActivationEvent::ProjectCreated
            ]
        );
        for bad in ["", "signup", "project_created,nope"] {
            let e = Config::validate(Raw {
                activation_events: bad.into(),
                ..Raw::default()
            })
            .unwrap_err();
            assert_eq!(e.key, "KFACTOR_ACTIVATION_EVENTS", "{bad:?}");
        }
        for bad in [0, 366] {
            let e = Config::validate(Raw {
                attribution_window_days: bad,
                ..Raw::default()
            })
            .unwrap_err();
            assert_eq!(e.key, "KFACTOR_ATTRIBUTION_WINDOW_DAYS");
        }
    }

    #[test]
    fn webhook_keys_are_validated() {
        let c = Config::for_database("sqlite::memory:");
        assert_eq!(c.webhook_retry_schedule.len(), 8);
        assert_eq!(c.webhook_retry_schedule[2].as_secs(), 300);
        assert!(!c.webhook_allow_http && !c.webhook_allow_private);
        assert_eq!(c.webhook_retention_days, 30);
        let c = Config::validate(Raw {
            webhook_retry_schedule: StrOrNum::Str(" 0, 1 ,2".into()),
            ..Raw::default()
        })
        .unwrap();
        assert_eq!(
            c.webhook_retry_schedule,
            [0, 1, 2].map(std::time::Duration::from_secs)
        );
        let c = Config::validate(Raw {
            webhook_retry_schedule: StrOrNum::Num(7),
            ..Raw::default()
        })
        .unwrap();
        assert_eq!(c.webhook_retry_schedule.len(), 1);
        for bad in ["", "1,,2", "-1", "5m", "9999999"] {
            let e = Config::validate(Raw {
                webhook_retry_schedule: StrOrNum::Str(bad.into()),
                ..Raw::default()
            })
            .unwrap_err();
            assert_eq!(e.key, "KFACTOR_WEBHOOK_RETRY_SCHEDULE", "{bad:?}");
        }
        let e = Config::validate(Raw {
            webhook_retention_days: 0,
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "KFACTOR_WEBHOOK_RETENTION_DAYS");
        let e = Config::validate(Raw {
            webhook_concurrency: 0,
            ..Raw::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "KFACTOR_WEBHOOK_CONCURRENCY");
    }
}
