//! Settings of account safety and abuse limits: rate limits of the public doors, the
//! password-hashing pool, the client address behind proxies, alias limits and the deletion
//! grace period. Flattened into the main configuration, so every key is a plain
//! `KFACTOR_<KEY>` like the others.
use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{err, ConfigError};

/// At most `count` events per `period`, as a token bucket: `count` may happen at once, then
/// one more every `period / count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed at once.
    pub count: u32,
    /// The time in which a full bucket refills.
    pub period: Duration,
}

impl Rate {
    /// `count` per `period`.
    pub const fn new(count: u32, period: Duration) -> Rate {
        Rate { count, period }
    }

    /// Parses `N/period` (`10/15m`, `100/1h`, `5/30s`, `1000/1d`), or `off`.
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || format!("{s:?} is not a rate like \"10/15m\" (units s, m, h, d) or \"off\"");
        let (n, period) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let (digits, unit) = period.split_at(period.len().saturating_sub(1));
        let digits = if digits.is_empty() { "1" } else { digits };
        let amount: u64 = digits.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => amount,
            "m" => amount * 60,
            "h" => amount * 3600,
            "d" => amount * 86_400,
            _ => return Err(bad()),
        };
        if !(1..=1_000_000).contains(&count) || !(1..=7 * 86_400).contains(&secs) {
            return Err(format!(
                "{s:?}: the count must be 1..=1000000 and the period 1s..=7d"
            ));
        }
        Ok(Some(Rate::new(count, Duration::from_secs(secs))))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.period.as_secs();
        let (n, unit) = if s % 86_400 == 0 {
            (s / 86_400, "d")
        } else if s % 3600 == 0 {
            (s / 3600, "h")
        } else if s % 60 == 0 {
            (s / 60, "m")
        } else {
            (s, "s")
        };
        write!(f, "{}/{n}{unit}", self.count)
    }
}

/// The validated safety settings. A rate of `None` is off.
#[derive(Clone, Debug)]
pub struct Safety {
    /// Failed log-ins per email address (`logIn`, the invitation page's log-in form).
    pub login_failures_per_address: Option<Rate>,
    /// Failed log-ins per client address.
    pub login_failures_per_ip: Option<Rate>,
    /// Sign-ups per client address.
    pub signups_per_ip: Option<Rate>,
    /// Sign-up attempts per email address.
    pub signups_per_address: Option<Rate>,
    /// Verification emails (resends, email changes) per address they go to.
    pub verification_emails_per_address: Option<Rate>,
    /// Verification emails per client address.
    pub verification_emails_per_ip: Option<Rate>,
    /// Password-reset requests per email address.
    pub reset_emails_per_address: Option<Rate>,
    /// Password-reset requests per client address.
    pub reset_emails_per_ip: Option<Rate>,
    /// Guest comments per visitor id (in process).
    pub guest_comments_per_visitor: Option<Rate>,
    /// Guest comments per shared link (in process).
    pub guest_comments_per_link: Option<Rate>,
    /// Guest comments per client address (in process).
    pub guest_comments_per_ip: Option<Rate>,
    /// Guest edits per shared link (in process).
    pub guest_edits_per_link: Option<Rate>,
    /// Guest edits per client address (in process).
    pub guest_edits_per_ip: Option<Rate>,
    /// Public token lookups (shared links, invitations, referral codes, email links) per
    /// client address (in process).
    pub public_lookups_per_ip: Option<Rate>,
    /// `updatePresence` calls per viewer (in process).
    pub presence_updates_per_viewer: Option<Rate>,
    /// New visitor ids one client address may introduce (in process); beyond it, its opens
    /// count as one visitor.
    pub visitor_ids_per_ip: Option<Rate>,
    /// Dashboard page and CSV loads per signed-in user (in process): each computes two
    /// growth answers.
    pub dashboard_per_user: Option<Rate>,
    /// `Organization.benchmarks` answers per organization (in process): a cold one reads
    /// the window's totals of every organization.
    pub benchmarks_per_org: Option<Rate>,
    /// Invitation sends per hour of a user whose address is not verified yet.
    pub unverified_invitation_sends_per_hour: u64,
    /// How often one expensive root field (`logIn`, `signUp`, `guestComment`, …) may appear
    /// in one request.
    pub graphql_max_expensive_fields: usize,
    /// Threads hashing passwords at once (each holds 19 MiB).
    pub password_hashers: usize,
    /// Longest wait for a free hasher before RATE_LIMITED.
    pub password_hash_max_wait: Duration,
    /// Peers whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header a trusted proxy puts the client's address in.
    pub client_ip_header: String,
    /// Days between `deleteOrganization` and the organization's removal.
    pub organization_deletion_grace_days: i64,
}

impl Safety {
    /// Whether `ip` is a configured trusted proxy.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }
}

/// A value figment may have read as a number or a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Text {
    Num(u64),
    Str(String),
}

impl Text {
    pub(super) fn get(&self) -> String {
        match self {
            Text::Num(n) => n.to_string(),
            Text::Str(s) => s.clone(),
        }
    }
}

fn s(v: &str) -> Text {
    Text::Str(v.into())
}

/// The raw layers of [`Safety`], flattened into the main configuration.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RawSafety {
    limit_login_failures_per_address: Text,
    limit_login_failures_per_ip: Text,
    limit_signups_per_ip: Text,
    limit_signups_per_address: Text,
    limit_verification_emails_per_address: Text,
    limit_verification_emails_per_ip: Text,
    limit_reset_emails_per_address: Text,
    limit_reset_emails_per_ip: Text,
    limit_guest_comments_per_visitor: Text,
    limit_guest_comments_per_link: Text,
    limit_guest_comments_per_ip: Text,
    limit_guest_edits_per_link: Text,
    limit_guest_edits_per_ip: Text,
    limit_public_lookups_per_ip: Text,
    limit_presence_updates_per_viewer: Text,
    limit_visitor_ids_per_ip: Text,
    limit_dashboard_per_user: Text,
    limit_benchmarks_per_org: Text,
    unverified_invitation_sends_per_hour: u64,
    graphql_max_expensive_fields: usize,
    password_hashers: usize,
    password_hash_max_wait_ms: u64,
    trusted_proxies: Text,
    client_ip_header: String,
    organization_deletion_grace_days: i64,
}

impl Default for RawSafety {
    fn default() -> Self {
        RawSafety {
            limit_login_failures_per_address: s("10/15m"),
            limit_login_failures_per_ip: s("100/15m"),
            limit_signups_per_ip: s("20/1h"),
            limit_signups_per_address: s("5/1h"),
            limit_verification_emails_per_address: s("5/1h"),
            limit_verification_emails_per_ip: s("20/1h"),
            limit_reset_emails_per_address: s("5/1h"),
            limit_reset_emails_per_ip: s("20/1h"),
            limit_guest_comments_per_visitor: s("20/10m"),
            limit_guest_comments_per_link: s("300/1h"),
            limit_guest_comments_per_ip: s("60/10m"),
            limit_guest_edits_per_link: s("600/1h"),
            limit_guest_edits_per_ip: s("120/10m"),
            limit_public_lookups_per_ip: s("600/1m"),
            limit_presence_updates_per_viewer: s("30/1s"),
            limit_visitor_ids_per_ip: s("100/1h"),
            limit_dashboard_per_user: s("120/10m"),
            limit_benchmarks_per_org: s("120/10m"),
            unverified_invitation_sends_per_hour: 20,
            graphql_max_expensive_fields: 1,
            password_hashers: 0,
            password_hash_max_wait_ms: 2000,
            trusted_proxies: s(""),
            client_ip_header: "x-forwarded-for".into(),
            organization_deletion_grace_days: 14,
        }
    }
}

impl RawSafety {
    pub(super) fn validate(self) -> Result<Safety, ConfigError> {
        let rate = |key: &str, v: &Text| Rate::parse(&v.get()).map_err(|m| err(key, m));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let trusted_proxies = self
            .trusted_proxies
            .get()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        err(
                            "trusted_proxies",
                            format!("{p:?} is not an address or network like 10.0.0.0/8"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client_ip_header = self.client_ip_header.trim().to_ascii_lowercase();
        if axum::http::HeaderName::from_bytes(client_ip_header.as_bytes()).is_err() {
            return Err(err("client_ip_header", "must be a header name"));
        }
        if !(1..=100).contains(&self.graphql_max_expensive_fields) {
            return Err(err(
                "graphql_max_expensive_fields",
                "must be between 1 and 100",
            ));
        }
        if self.password_hashers > 256 {
            return Err(err(
                "password_hashers",
                "must be at most 256 (0: one per CPU)",
            ));
        }
        if self.password_hash_max_wait_ms > 60_000 {
            return Err(err("password_hash_max_wait_ms", "must be at most 60000"));
        }
        if !(0..=365).contains(&self.organization_deletion_grace_days) {
            return Err(err(
                "organization_deletion_grace_days",
                "must be between 0 and 365",
            ));
        }
        if self.unverified_invitation_sends_per_hour == 0 {
            return Err(err(
                "unverified_invitation_sends_per_hour",
                "must be at least 1",
            ));
        }
        Ok(Safety {
            login_failures_per_address: rate(
                "limit_login_failures_per_address",
                &self.limit_login_failures_per_address,
            )?,
            login_failures_per_ip: rate(
                "limit_login_failures_per_ip",
                &self.limit_login_failures_per_ip,
            )?,
            signups_per_ip: rate("limit_signups_per_ip", &self.limit_signups_per_ip)?,
            signups_per_address: rate(
                "limit_signups_per_address",
                &self.limit_signups_per_address,
            )?,
            verification_emails_per_address: rate(
                "limit_verification_emails_per_address",
                &self.limit_verification_emails_per_address,
            )?,
            verification_emails_per_ip: rate(
                "limit_verification_emails_per_ip",
                &self.limit_verification_emails_per_ip,
            )?,
            reset_emails_per_address: rate(
                "limit_reset_emails_per_address",
                &self.limit_reset_emails_per_address,
            )?,
            reset_emails_per_ip: rate(
                "limit_reset_emails_per_ip",
                &self.limit_reset_emails_per_ip,
            )?,
            guest_comments_per_visitor: rate(
                "limit_guest_comments_per_visitor",
                &self.limit_guest_comments_per_visitor,
            )?,
            guest_comments_per_link: rate(
                "limit_guest_comments_per_link",
                &self.limit_guest_comments_per_link,
            )?,
            guest_comments_per_ip: rate(
                "limit_guest_comments_per_ip",
                &self.limit_guest_comments_per_ip,
            )?,
            guest_edits_per_link: rate(
                "limit_guest_edits_per_link",
                &self.limit_guest_edits_per_link,
            )?,
            guest_edits_per_ip: rate("limit_guest_edits_per_ip", &self.limit_guest_edits_per_ip)?,
            public_lookups_per_ip: rate(
                "limit_public_lookups_per_ip",
                &self.limit_public_lookups_per_ip,
            )?,
            visitor_ids_per_ip: rate("limit_visitor_ids_per_ip", &self.limit_visitor_ids_per_ip)?,
            presence_updates_per_viewer: rate(
                "limit_presence_updates_per_viewer",
                &self.limit_presence_updates_per_viewer,
            )?,
            dashboard_per_user: rate("limit_dashboard_per_user", &self.limit_dashboard_per_user)?,
            benchmarks_per_org: rate("limit_benchmarks_per_org", &self.limit_benchmarks_per_org)?,
            unverified_invitation_sends_per_hour: self.unverified_invitation_sends_per_hour,
            graphql_max_expensive_fields: self.graphql_max_expensive_fields,
            password_hashers: if self.password_hashers == 0 {
                cpus
            } else {
                self.password_hashers
            },
            password_hash_max_wait: Duration::from_millis(self.password_hash_max_wait_ms),
            trusted_proxies,
            client_ip_header,
            organization_deletion_grace_days: self.organization_deletion_grace_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(
            Rate::parse("10/15m").unwrap(),
            Some(Rate::new(10, Duration::from_secs(900)))
        );
        assert_eq!(
            Rate::parse(" 5 / h ").unwrap(),
            Some(Rate::new(5, Duration::from_secs(3600)))
        );
        assert_eq!(Rate::parse("OFF").unwrap(), None);
        for bad in ["", "10", "10/", "x/1m", "10/5w", "0/1m", "10/8d", "-1/1m"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Rate::new(100, Duration::from_secs(3600)).to_string(),
            "100/1h"
        );
        assert_eq!(Rate::new(3, Duration::from_secs(90)).to_string(), "3/90s");
    }

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        let s = RawSafety::default().validate().unwrap();
        assert_eq!(s.login_failures_per_address.unwrap().to_string(), "10/15m");
        assert!(s.password_hashers >= 1);
        assert!(s.trusted_proxies.is_empty());
        let e = RawSafety {
            limit_signups_per_ip: s_text("often"),
            ..RawSafety::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.given_as, "KFACTOR_LIMIT_SIGNUPS_PER_IP");
        let e = RawSafety {
            trusted_proxies: s_text("10.0.0.0/8, nope"),
            ..RawSafety::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.given_as, "KFACTOR_TRUSTED_PROXIES");
        let ok = RawSafety {
            trusted_proxies: s_text("10.0.0.0/8, 127.0.0.1"),
            ..RawSafety::default()
        }
        .validate()
        .unwrap();
        assert!(ok.is_trusted_proxy("10.1.2.3".parse().unwrap()));
        assert!(ok.is_trusted_proxy("127.0.0.1".parse().unwrap()));
        assert!(!ok.is_trusted_proxy("192.168.0.1".parse().unwrap()));
    }

    fn s_text(v: &str) -> Text {
        s(v)
    }
}
