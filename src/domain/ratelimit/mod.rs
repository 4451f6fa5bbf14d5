//! Rate limits of every public or expensive door, transport-free: a GraphQL resolver and a
//! page handler call the same function and get the same decision.
//!
//! Two kinds of buckets (see `store`): on PostgreSQL the counters of log-in, sign-up and
//! account emails live in the database, so they hold across instances; the hot guest path
//! (public token lookups, guest comments, visitor ids) stays in process, per instance, so
//! it adds no database round trip. On SQLite, which serves one instance, everything is in
//! process. Every refusal is [`DomainError::RateLimited`] with the seconds to wait.
use entity::ids::{OrgId, SharedLinkId, UserId};
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{tokens::Keys, DomainError, DomainResult, Services};
use crate::{config::Rate, db::Db};

mod store;
mod visitors;

/// Who is asking, as far as limits and session records care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the socket peer, or what a trusted proxy said.
    pub ip: IpAddr,
    /// The `User-Agent` header, shortened.
    pub user_agent: Option<String>,
}

impl Client {
    /// A client at `ip`. IPv4-mapped IPv6 addresses count as the IPv4 address.
    pub fn new(ip: IpAddr, user_agent: Option<&str>) -> Client {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        Client {
            ip,
            user_agent: user_agent
                .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect())
                .filter(|ua: &String| !ua.is_empty()),
        }
    }

    /// A caller without a network address (command line, internal jobs).
    pub fn internal() -> Client {
        Client::new(IpAddr::from([0, 0, 0, 0]), None)
    }

    /// The unit per-address limits count: an IPv4 address, or the /64 network of an IPv6
    /// one (a single subscriber usually holds a whole /64).
    pub fn ip_key(&self) -> String {
        match self.ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::internal()
    }
}

/// Tokens taken from one bucket, so they can be given back.
#[derive(Debug)]
pub struct Taken {
    key: String,
    rate: Rate,
    shared: bool,
}

/// The buckets of this process (and its handle on the shared ones).
#[derive(Debug)]
pub struct Limiter {
    memory: store::Memory,
    shared: Option<store::Shared>,
    visitors: visitors::VisitorIds,
    key_mac: [u8; 32],
}

impl Limiter {
    /// Buckets for `db`: shared ones in the database on PostgreSQL.
    pub fn new(db: &Db, keys: &Keys) -> Limiter {
        let shared = (db.backend() == sea_orm::DatabaseBackend::Postgres)
            .then(|| store::Shared::new(db.write.clone()));
        Limiter {
            memory: store::Memory::default(),
            shared,
            visitors: visitors::VisitorIds::default(),
            key_mac: keys.subkey(b"rate limit keys"),
        }
    }

    /// A bucket key that names no address or email in the database.
    fn stored_key(&self, name: &str, key: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key_mac).expect("any key size");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(key.as_bytes());
        format!("{name}:{}", hex::encode(&mac.finalize().into_bytes()[..16]))
    }

    /// Takes from a bucket that holds across instances (in the database on PostgreSQL).
    async fn take(
        &self,
        now: i64,
        name: &str,
        rate: Option<Rate>,
        key: &str,
    ) -> DomainResult<Option<Taken>> {
        let Some(rate) = rate else {
            return Ok(None);
        };
        let result = match &self.shared {
            Some(db) => {
                let key = self.stored_key(name, key);
                db.take(&key, now, rate, 1).await?.map(|_| Taken {
                    key,
                    rate,
                    shared: true,
                })
            }
            None => {
                let key = format!("{name}:{key}");
                self.memory.take(&key, now, rate, 1).map(|_| Taken {
                    key,
                    rate,
                    shared: false,
                })
            }
        };
        result.map(Some).map_err(|wait_ms| refused(name, wait_ms))
    }

    /// Takes from an in-process bucket (the hot guest path: no database round trip).
    fn take_local(&self, now: i64, name: &str, rate: Option<Rate>, key: &str) -> DomainResult<()> {
        let Some(rate) = rate else { return Ok(()) };
        self.memory
            .take(&format!("{name}:{key}"), now, rate, 1)
            .map_err(|wait_ms| refused(name, wait_ms))
    }

    async fn refund(&self, taken: Taken) -> DomainResult<()> {
        if taken.shared {
            if let Some(db) = &self.shared {
                db.refund(&taken.key, taken.rate, 1).await?;
            }
        } else {
            self.memory.refund(&taken.key, taken.rate, 1);
        }
        Ok(())
    }
}

/// A refusal by the bucket `name`, counted in `kfactor_rate_limited_total{limit}`.
fn refused(name: &str, wait_ms: i64) -> DomainError {
    metrics::counter!("kfactor_rate_limited_total", "limit" => name.to_string()).increment(1);
    DomainError::RateLimited {
        retry_after_seconds: (wait_ms as u64).div_ceil(1000).max(1),
    }
}

fn now_ms(svc: &Services) -> i64 {
    svc.now().timestamp_millis()
}

fn address_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A log-in attempt that holds its place in the failure budgets until it is known not to
/// be a failure ([`Attempt::forgive`] gives the places back: only failures count).
#[derive(Debug)]
#[must_use]
pub struct Attempt(Vec<Taken>);

impl Attempt {
    /// The password was right (or was never checked): this attempt is not a failure.
    pub async fn forgive(self, svc: &Services) -> DomainResult<()> {
        for t in self.0 {
            svc.limiter.refund(t).await?;
        }
        Ok(())
    }
}

/// Takes one place from each bucket in turn; when one refuses, the places already taken
/// are given back, so a refused attempt costs nothing elsewhere.
async fn take_all(
    svc: &Services,
    buckets: &[(&str, Option<Rate>, &str)],
) -> DomainResult<Vec<Taken>> {
    let now = now_ms(svc);
    let mut taken = Vec::new();
    for (name, rate, key) in buckets {
        match svc.limiter.take(now, name, *rate, key).await {
            Ok(t) => taken.extend(t),
            Err(e) => {
                for t in taken {
                    svc.limiter.refund(t).await?;
                }
                return Err(e);
            }
        }
    }
    Ok(taken)
}

/// Before checking a password for `email`: one place in the failure budgets of the client
/// and of the address. Taking before checking (and giving back on success) keeps the budgets
/// exact under concurrent attempts, on every instance.
pub async fn log_in(svc: &Services, client: &Client, email: &str) -> DomainResult<Attempt> {
    let s = &svc.config.safety;
    take_all(
        svc,
        &[
            ("login_ip", s.login_failures_per_ip, &client.ip_key()),
            (
                "login_address",
                s.login_failures_per_address,
                &address_key(email),
            ),
        ],
    )
    .await
    .map(Attempt)
}

/// A sign-up attempt from `client` for `email`.
pub async fn sign_up(svc: &Services, client: &Client, email: &str) -> DomainResult<()> {
    let s = &svc.config.safety;
    take_all(
        svc,
        &[
            ("signup_ip", s.signups_per_ip, &client.ip_key()),
            ("signup_address", s.signups_per_address, &address_key(email)),
        ],
    )
    .await
    .map(drop)
}

/// A verification email (resend, email change) from `client` to `email`.
pub async fn verification_email(svc: &Services, client: &Client, email: &str) -> DomainResult<()> {
    let s = &svc.config.safety;
    take_all(
        svc,
        &[
            ("verify_ip", s.verification_emails_per_ip, &client.ip_key()),
            (
                "verify_address",
                s.verification_emails_per_address,
                &address_key(email),
            ),
        ],
    )
    .await
    .map(drop)
}

/// A password-reset request from `client` for `email` (counted whether or not the address
/// has an account, so the limit itself reveals nothing).
pub async fn reset_email(svc: &Services, client: &Client, email: &str) -> DomainResult<()> {
    let s = &svc.config.safety;
    take_all(
        svc,
        &[
            ("reset_ip", s.reset_emails_per_ip, &client.ip_key()),
            (
                "reset_address",
                s.reset_emails_per_address,
                &address_key(email),
            ),
        ],
    )
    .await
    .map(drop)
}

/// A public token lookup (shared link, invitation, referral code, email link) by `client`.
pub fn public_lookup(svc: &Services, client: &Client) -> DomainResult<()> {
    svc.limiter.take_local(
        now_ms(svc),
        "lookup_ip",
        svc.config.safety.public_lookups_per_ip,
        &client.ip_key(),
    )
}

/// A dashboard load (page or CSV) by a signed-in user (in process).
pub fn dashboard(svc: &Services, user: UserId) -> DomainResult<()> {
    svc.limiter.take_local(
        now_ms(svc),
        "dashboard_user",
        svc.config.safety.dashboard_per_user,
        &user.to_string(),
    )
}

/// A benchmarks answer for organization `org` (in process), taken once the caller is known
/// to be allowed, so nobody outside the organization can use up its budget.
pub fn benchmarks(svc: &Services, org: OrgId) -> DomainResult<()> {
    svc.limiter.take_local(
        now_ms(svc),
        "benchmarks_org",
        svc.config.safety.benchmarks_per_org,
        &org.to_string(),
    )
}

/// A guest comment by `client` through `link`, as `visitor` (when the guest sent one). In
/// process: the hot guest path adds no database round trip.
pub fn guest_comment(
    svc: &Services,
    client: &Client,
    link: SharedLinkId,
    visitor: Option<&str>,
) -> DomainResult<()> {
    let s = &svc.config.safety;
    let mut buckets = vec![
        ("comment_ip", s.guest_comments_per_ip, client.ip_key()),
        ("comment_link", s.guest_comments_per_link, link.to_string()),
    ];
    if let Some(v) = visitor {
        buckets.push((
            "comment_visitor",
            s.guest_comments_per_visitor,
            v.to_string(),
        ));
    }
    take_all_local(svc, buckets)
}

/// A guest edit by `client` through `link` (in process, like guest comments).
pub fn guest_edit(svc: &Services, client: &Client, link: SharedLinkId) -> DomainResult<()> {
    let s = &svc.config.safety;
    take_all_local(
        svc,
        vec![
            ("edit_ip", s.guest_edits_per_ip, client.ip_key()),
            ("edit_link", s.guest_edits_per_link, link.to_string()),
        ],
    )
}

/// Takes one from each in-process bucket, or none of them: a refusal by one refunds the
/// others, so a refused write costs nothing.
fn take_all_local(
    svc: &Services,
    buckets: Vec<(&'static str, Option<Rate>, String)>,
) -> DomainResult<()> {
    let now = now_ms(svc);
    let l = &svc.limiter;
    let mut taken: Vec<(String, Rate)> = Vec::new();
    for (name, rate, key) in buckets {
        let Some(rate) = rate else { continue };
        let key = format!("{name}:{key}");
        if let Err(wait_ms) = l.memory.take(&key, now, rate, 1) {
            for (k, r) in taken {
                l.memory.refund(&k, r, 1);
            }
            return Err(refused(name, wait_ms));
        }
        taken.push((key, rate));
    }
    Ok(())
}

/// The visitor key to record for a guest's open: their id while their address is within
/// its budget of new ids, else one id standing for the whole address.
pub fn visitor(svc: &Services, client: &Client, visitor: String) -> String {
    let Some(rate) = svc.config.safety.visitor_ids_per_ip else {
        return visitor;
    };
    let address = client.ip_key();
    if svc
        .limiter
        .visitors
        .admit(&address, &visitor, now_ms(svc), rate)
    {
        visitor
    } else {
        format!("addr_{}", &svc.limiter.stored_key("visitor", &address)[8..])
    }
}

/// A presence update by the viewer with public id `viewer` (in process: the live path adds
/// no database round trip).
pub fn presence_update(svc: &Services, viewer: &str) -> DomainResult<()> {
    svc.limiter.take_local(
        now_ms(svc),
        "presence_viewer",
        svc.config.safety.presence_updates_per_viewer,
        viewer,
    )
}
