//! Identity: sign-up with attribution, log-in, sessions.
use chrono::Duration;
use entity::ids::SessionId;
use rand::Rng;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, QueryTrait,
};

use super::{
    accounts,
    ids::{OrgId, ProjectId, UserId},
    invitations, metrics,
    orgs::{self, Role},
    ratelimit::{self, Client},
    referrals, sharing, tokens, DomainError, DomainResult, Services,
};
use crate::db::Tx;
use crate::outbox::{self, WebhookEvent};
use entity::{
    email_tokens::Purpose, memberships, organizations, sessions, sessions::SessionKind, users,
};
use serde_json::json;

/// A syntactically valid, normalised (trimmed, lower-cased) email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates and normalises an address.
    pub fn parse(raw: &str) -> DomainResult<Email> {
        let e = raw.trim().to_lowercase();
        let bad = || {
            DomainError::invalid(
                &["email"],
                "Enter a valid email address, like ana@example.com.",
            )
        };
        if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = e.split_once('@').ok_or_else(bad)?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if local.is_empty()
            || local.len() > 64
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local.contains(['<', '>', '(', ')', '[', ']', ',', ';', ':', '\\', '"', '@'])
            || !domain.contains('.')
            || !domain.split('.').all(label_ok)
        {
            return Err(bad());
        }
        Ok(Email(e))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 10 to 1024 characters.
pub struct Password(pub(crate) String);

impl Password {
    /// Checks the length rule.
    pub fn parse(raw: &str) -> DomainResult<Password> {
        let n = raw.chars().count();
        if n < 10 {
            return Err(DomainError::invalid(
                &["password"],
                "Use at least 10 characters for your password.",
            ));
        }
        if n > 1024 {
            return Err(DomainError::invalid(
                &["password"],
                "Passwords can be at most 1024 characters long.",
            ));
        }
        Ok(Password(raw.to_string()))
    }
}

/// A display name (of a person, an organization or a guest): cleaned by [`clean_name`],
/// trimmed, 1..=100 characters. Names end up in emails and pages, so what could disguise
/// text there is removed when they are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// The longest accepted name, in characters.
    pub const MAX: usize = 100;

    /// Cleans and validates a name; `field` names the input for the error.
    pub fn parse(raw: &str, field: &str) -> DomainResult<Name> {
        let n = clean_name(raw);
        if n.is_empty() {
            return Err(DomainError::invalid(&[field], "Enter a name."));
        }
        if n.chars().count() > Self::MAX {
            return Err(DomainError::invalid(
                &[field],
                format!("Names can be at most {} characters long.", Self::MAX),
            ));
        }
        Ok(Name(n))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` is removed from names: control characters (Unicode Cc) and bidirectional
/// controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which can reorder or
/// hide what an email or page shows. Joiners (U+200C, U+200D), which emoji sequences and
/// many scripts need, stay.
fn is_disguising(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name without control and bidirectional characters (line breaks and tabs become
/// spaces), trimmed.
pub fn clean_name(raw: &str) -> String {
    raw.chars()
        .filter_map(|c| match c {
            c if c.is_control() && c.is_whitespace() => Some(' '),
            c if is_disguising(c) => None,
            c => Some(c),
        })
        .collect::<String>()
        .trim()
        .to_string()
}

pub use entity::enums::AcquisitionSource;

/// What `signUp` receives.
#[derive(Clone, Debug, Default)]
pub struct SignUpInput {
    #[allow(missing_docs)]
    pub email: String,
    #[allow(missing_docs)]
    pub password: String,
    #[allow(missing_docs)]
    pub name: String,
    /// Joins that organization (attribution INVITE).
    pub invite_token: Option<String>,
    /// Signed up from a shared link (attribution SHARE).
    pub share_token: Option<String>,
    /// The guest's visitor id.
    pub visitor_id: Option<String>,
    /// Signed up from a referral link (attribution REFERRAL).
    pub referral_code: Option<String>,
    /// Paid campaign source (attribution PAID when no viral token).
    pub utm_source: Option<String>,
    /// Who is signing up (rate limits, the session record).
    pub client: Client,
}

/// A new session and where the user landed.
#[derive(Debug)]
pub struct SignedIn {
    /// The bearer token; shown once.
    pub token: String,
    /// The user.
    pub user: users::Model,
    /// The organization the user landed in, with their role there.
    pub organization: Option<(organizations::Model, Role)>,
    /// What still stands in the way, e.g. EMAIL_NOT_VERIFIED after a signup through a
    /// copied invitation link (the account exists; joining waits for the verification).
    pub notice: Option<DomainError>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// How a signup came about, resolved from the inputs by precedence.
enum Via {
    Organic,
    Paid,
    Invite(entity::invitations::Model),
    Share(Box<entity::shared_links::Model>),
    Referral(users::Model),
}

impl Via {
    fn source(&self) -> AcquisitionSource {
        match self {
            Via::Organic => AcquisitionSource::Organic,
            Via::Paid => AcquisitionSource::Paid,
            Via::Invite(_) => AcquisitionSource::Invite,
            Via::Share(_) => AcquisitionSource::Share,
            Via::Referral(_) => AcquisitionSource::Referral,
        }
    }
}

/// Attribution precedence: inviteToken > shareToken > referralCode > utmSource > ORGANIC.
/// One rule for every token and code: each one given is checked, and one that does not
/// check out refuses the signup (it would otherwise be silently credited to the wrong
/// source, or to none), with the code of its condition and the field that carried it.
async fn attribution(
    svc: &Services,
    input: &SignUpInput,
    email: &Email,
    utm: bool,
) -> DomainResult<Via> {
    let now = svc.now();
    let invite = match non_empty(&input.invite_token) {
        Some(token) => Some(
            invitation_for(svc, token, email, now)
                .await
                .map_err(|e| e.at(&["inviteToken"]))?,
        ),
        None => None,
    };
    let share = match non_empty(&input.share_token) {
        Some(token) => {
            let opened = sharing::resolve(svc, &svc.db.read, token, None)
                .await
                .map_err(|e| match e {
                    DomainError::Unauthenticated(_) | DomainError::Forbidden => {
                        DomainError::NotFound("Shared link")
                    }
                    other => other,
                })
                .and_then(|opened| {
                    referrals::not_self(&opened.creator, email)?;
                    Ok(opened)
                })
                .map_err(|e| e.at(&["shareToken"]))?;
            Some(opened.link)
        }
        None => None,
    };
    let referral = match non_empty(&input.referral_code) {
        Some(code) => {
            let referrer = referrals::referrer(&svc.db.read, code)
                .await
                // An unknown code is the same condition as an unknown token.
                .map_err(|e| match e {
                    DomainError::InvalidInput { .. } => DomainError::NotFound("Referral code"),
                    other => other,
                })
                .and_then(|r| {
                    referrals::not_self(&r, email)?;
                    Ok(r)
                })
                .map_err(|e| e.at(&["referralCode"]))?;
            Some(referrer)
        }
        None => None,
    };
    Ok(match (invite, share, referral) {
        (Some(inv), _, _) => Via::Invite(inv),
        (None, Some(link), _) => Via::Share(Box::new(link)),
        (None, None, Some(referrer)) => Via::Referral(referrer),
        (None, None, None) if utm => Via::Paid,
        (None, None, None) => Via::Organic,
    })
}

/// The invitation an invite token names, if it can be used by `email` now: the same
/// conditions, with the same codes, as `acceptInvitation`.
async fn invitation_for(
    svc: &Services,
    token: &str,
    email: &Email,
    now: chrono::DateTime<chrono::Utc>,
) -> DomainResult<entity::invitations::Model> {
    let inv = invitations::by_token(svc, &svc.db.read, token).await?;
    invitations::usable(&inv, now)?;
    if inv.email != email.as_str() {
        return Err(DomainError::InvitationEmailMismatch);
    }
    Ok(inv)
}

/// Creates an account and a session in one transaction. Through an invitation the user joins
/// that organization; otherwise they get a workspace of their own.
pub async fn sign_up(svc: &Services, input: SignUpInput) -> DomainResult<SignedIn> {
    let email = Email::parse(&input.email)?;
    let name = Name::parse(&input.name, "name")?;
    let password = Password::parse(&input.password)?;
    let utm = non_empty(&input.utm_source).map(str::to_string);
    if utm.as_ref().is_some_and(|u| u.chars().count() > 200) {
        return Err(DomainError::invalid(
            &["utmSource"],
            "utmSource can be at most 200 characters long.",
        ));
    }
    ratelimit::sign_up(svc, &input.client, email.as_str()).await?;
    let via = attribution(svc, &input, &email, utm.is_some()).await?;
    let source = via.source();

    // Cheap duplicate check before the expensive hash; the unique index is the real guard.
    if find_by_email(&svc.db.read, &email).await?.is_some() {
        return Err(DomainError::EmailTaken);
    }
    let hash = svc.hasher.hash(password.0).await?;
    let now = svc.now();
    // The emailed invitation link proves the address; no other way of signing up does.
    let proven = match (&via, non_empty(&input.invite_token)) {
        (Via::Invite(inv), Some(token)) => invitations::proves_email(svc, inv, token),
        _ => false,
    };

    let mut tx = Tx::begin(&svc.db).await?;
    let user_id = UserId::generate();
    let probe = growth_probe(&tx, svc, &via, user_id).await?;
    // Who and which organization the signup is credited to, frozen here (METRICS.md).
    let (invited_by, invitation_id, attributed_org) = match &via {
        Via::Invite(inv) => (
            Some(inv.invited_by_user_id),
            Some(inv.id.0),
            Some(inv.organization_id),
        ),
        Via::Share(link) => (
            Some(link.created_by_user_id),
            Some(link.id.0),
            Some(link.organization_id),
        ),
        Via::Referral(r) => (Some(r.id), None, r.active_organization_id),
        Via::Organic | Via::Paid => (None, None, None),
    };
    let user = users::ActiveModel {
        id: Set(user_id),
        email: Set(email.as_str().to_string()),
        name: Set(name.as_str().to_string()),
        password_hash: Set(hash),
        acquisition_source: Set(source),
        invited_by_user_id: Set(invited_by),
        invite_token_id: Set(invitation_id),
        utm_source: Set(utm),
        referral_code: Set(unique_referral_code(&*tx).await?),
        activated_at: Set(None),
        is_staff: Set(false),
        active_organization_id: Set(None),
        created_at: Set(now),
        attributed_organization_id: Set(attributed_org),
        email_verified_at: Set(proven.then_some(now)),
        deleted_at: Set(None),
    }
    .insert(&*tx)
    .await
    .map_err(|e| unique_violation(e, DomainError::EmailTaken))?;

    let landed = match &via {
        Via::Invite(inv) if proven => {
            let m = invitations::accept_in_tx(&mut tx, now, inv, &user, "invitation").await?;
            let org = entity::organizations::Entity::find_by_id(inv.organization_id)
                .one(&*tx)
                .await?
                .ok_or(DomainError::NotFound("Organization"))?;
            Some((org, m.role))
        }
        // A copied invitation link proves nothing about the address: the user joins once
        // they have verified it (accounts::verify_email), and get no workspace meanwhile.
        Via::Invite(_) => None,
        _ => Some(
            orgs::create_in_tx(
                &mut tx,
                now,
                &user,
                &workspace_name(name.as_str())?,
                &svc.plans.default_plan().key,
            )
            .await?,
        ),
    };
    let user = match &landed {
        Some((org, _)) => set_active_org(&*tx, user, Some(org.id)).await?,
        None => user,
    };
    if let (Via::Share(link), Some(visitor)) = (&via, non_empty(&input.visitor_id)) {
        // The guest's earlier comments become theirs.
        sharing::claim_guest_comments(&tx, link, visitor, &user).await?;
    }
    credit_viral_signup(&mut tx, now, &via, &user).await?;
    probe.close(&mut tx, svc).await?;
    let mut notice = None;
    if !proven {
        accounts::issue(
            &mut tx,
            now,
            Purpose::VerifyEmail,
            Some(user.id),
            &user.email,
        )
        .await?;
        if let Via::Invite(inv) = &via {
            let org = entity::organizations::Entity::find_by_id(inv.organization_id)
                .one(&*tx)
                .await?
                .ok_or(DomainError::NotFound("Organization"))?;
            notice = Some(DomainError::EmailNotVerified(format!(
                "We sent a verification link to {}. Open it to join {}.",
                user.email, org.name
            )));
        }
    }
    let token = create_session(&*tx, svc, user.id, &input.client).await?;
    tx.commit(&svc.bus).await?;
    tracing::info!(user_id = %user.id, source = source.as_str(), "user signed up");
    Ok(SignedIn {
        token,
        user,
        organization: landed,
        notice,
    })
}

/// The growth facts a signup touches: the new user, the invitation it came through, and the
/// people whose cohort numbers it can change (the invitation's senders, the credited user).
async fn growth_probe(
    tx: &Tx,
    svc: &Services,
    via: &Via,
    user: UserId,
) -> DomainResult<metrics::probe::Probe> {
    let mut only = metrics::sql::Only {
        users: vec![user],
        ..Default::default()
    };
    let people = match via {
        Via::Invite(inv) => {
            only.invitations.push(inv.id);
            vec![
                inv.invited_by_user_id,
                inv.first_sent_by_user_id.unwrap_or(inv.invited_by_user_id),
            ]
        }
        Via::Share(link) => vec![link.created_by_user_id],
        Via::Referral(r) => vec![r.id],
        Via::Organic | Via::Paid => vec![],
    };
    metrics::probe::Probe::open(tx, svc, only, &people, metrics::probe::Scopes::Both).await
}

/// The name of a new user's own workspace: "<name>'s workspace".
pub(crate) fn workspace_name(user_name: &str) -> DomainResult<Name> {
    Name::parse(
        &format!("{}'s workspace", first_chars(user_name, 88)),
        "name",
    )
}

/// A viral signup is credited to whoever caused it: a `signed_up` attribution row and a
/// `referral.signup` webhook message, in the signup's transaction.
async fn credit_viral_signup(
    tx: &mut Tx,
    now: chrono::DateTime<chrono::Utc>,
    via: &Via,
    user: &users::Model,
) -> DomainResult<()> {
    // `told`: whom the referrer hears about it as (an invitation's acceptance is its own
    // notification), and in which organization.
    let (referrer, org, resource, extra, told) = match via {
        Via::Invite(inv) => (
            inv.invited_by_user_id,
            Some(inv.organization_id),
            ("invitation", inv.id.0),
            json!({ "invitation_id": inv.id.to_string() }),
            None,
        ),
        Via::Share(link) => (
            link.created_by_user_id,
            Some(link.organization_id),
            ("shared_link", link.id.0),
            json!({
                "shared_link_id": link.id.to_string(),
                "resource_type": link.resource_type.as_str(),
                "resource_id": ProjectId(link.resource_id).to_string(),
            }),
            Some((Some(link.organization_id), "shared link")),
        ),
        Via::Referral(r) => (
            r.id,
            r.active_organization_id,
            ("referral_code", r.id.0),
            json!({}),
            Some((None, "referral link")),
        ),
        Via::Organic | Via::Paid => return Ok(()),
    };
    if let Some((scope, through)) = told {
        super::notifications::fanout::on_signup(tx, now, referrer, scope, user, through).await?;
    }
    referrals::record(
        tx,
        now,
        org,
        Some(referrer),
        "signed_up",
        Some(resource),
        Some(user.id),
    )
    .await?;
    let mut data = json!({
        "user_id": user.id.to_string(),
        "email": user.email,
        "source": via.source().as_str().to_uppercase(),
        "referrer_id": referrer.to_string(),
    });
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    outbox::webhook(
        tx,
        now,
        org,
        WebhookEvent {
            event_type: "referral.signup",
            data,
        },
    )
    .await?;
    Ok(())
}

/// Checks an email and password without starting a session. Unknown email and wrong
/// password give the same error after the same work; failures count against the log-in
/// limits of the address and of the client (`ratelimit::log_in`), so every door that takes
/// a password (`logIn`, the invitation page's log-in form) shares them.
pub async fn verify_credentials(
    svc: &Services,
    client: &Client,
    email: &str,
    password: &str,
) -> DomainResult<users::Model> {
    let attempt = ratelimit::log_in(svc, client, email).await?;
    let user = match Email::parse(email) {
        Ok(e) => find_by_email(&svc.db.read, &e).await?,
        Err(_) => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let checked = svc.hasher.verify(password.to_string(), stored).await;
    match (checked, user) {
        (Ok(true), Some(u)) => {
            attempt.forgive(svc).await?;
            Ok(u)
        }
        // Not checked at all (no hasher was free): not a failure either.
        (Err(e), _) => {
            attempt.forgive(svc).await?;
            Err(e)
        }
        _ => Err(DomainError::InvalidCredentials),
    }
}

/// Logs in: checks the credentials and starts a session.
pub async fn log_in(
    svc: &Services,
    client: &Client,
    email: &str,
    password: &str,
) -> DomainResult<SignedIn> {
    let user = verify_credentials(svc, client, email, password).await?;
    let token = create_session(&svc.db.write, svc, user.id, client).await?;
    let organization = match user.active_organization_id {
        Some(org) => orgs::find_with_role(&svc.db.read, org, user.id).await?,
        None => None,
    };
    Ok(SignedIn {
        token,
        user,
        organization,
        notice: None,
    })
}

/// Ends the session of `token` (and the live streams it opened, on every instance).
/// Returns whether a session was ended.
pub async fn log_out(svc: &Services, token: &str) -> DomainResult<bool> {
    let mut tx = Tx::begin(&svc.db).await?;
    let Some(session) = sessions::Entity::find()
        .filter(sessions::Column::TokenHash.eq(tokens::session_token_hash(token)))
        .one(&*tx)
        .await?
    else {
        return Ok(false);
    };
    sessions::Entity::delete_by_id(session.id)
        .exec(&*tx)
        .await?;
    tx.revoke(crate::db::bus::Revocation::User(session.user_id));
    tx.commit(&svc.bus).await?;
    Ok(true)
}

/// When the API session of `token` expires, if it is still valid: live streams check it
/// again then (a sliding expiry may have moved it on). Unlike [`authenticate`] it does not
/// extend the session.
pub async fn session_expiry(
    svc: &Services,
    token: &str,
) -> DomainResult<chrono::DateTime<chrono::Utc>> {
    const INVALID: &str = "Your session is not valid. Sign in again.";
    let session = sessions::Entity::find()
        .filter(sessions::Column::TokenHash.eq(tokens::session_token_hash(token.trim())))
        .filter(sessions::Column::Kind.eq(SessionKind::Api))
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::Unauthenticated(INVALID))?;
    if session.expires_at <= svc.now() {
        return Err(DomainError::Unauthenticated(
            "Your session has expired. Sign in again.",
        ));
    }
    Ok(session.expires_at)
}

/// Resolves a bearer token to its user, sliding the session's expiry forward. Only API
/// sessions count: a page session's cookie never authenticates an API request.
pub async fn authenticate(svc: &Services, token: &str) -> DomainResult<users::Model> {
    authenticate_kind(svc, token, SessionKind::Api).await
}

/// Logs in from the sign-in page: the same credential check and limits as `logIn`, but the
/// session is a page session (a cookie), which the API never accepts.
pub async fn log_in_page(
    svc: &Services,
    client: &Client,
    email: &str,
    password: &str,
) -> DomainResult<(String, users::Model)> {
    let user = verify_credentials(svc, client, email, password).await?;
    let token = start_page_session(svc, &user, client).await?;
    Ok((token, user))
}

/// Starts a page session for a user whose credentials were just checked.
pub async fn start_page_session(
    svc: &Services,
    user: &users::Model,
    client: &Client,
) -> DomainResult<String> {
    create_session_of(&svc.db.write, svc, user.id, client, SessionKind::Page).await
}

/// Resolves a page session cookie to its user (sliding its expiry like an API session).
pub async fn authenticate_page(svc: &Services, token: &str) -> DomainResult<users::Model> {
    authenticate_kind(svc, token, SessionKind::Page).await
}

async fn authenticate_kind(
    svc: &Services,
    token: &str,
    kind: SessionKind,
) -> DomainResult<users::Model> {
    let now = svc.now();
    let hash = tokens::session_token_hash(token.trim());
    const INVALID: &str = "Your session is not valid. Sign in again.";
    let session = sessions::Entity::find()
        .filter(sessions::Column::TokenHash.eq(hash))
        .filter(sessions::Column::Kind.eq(kind))
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::Unauthenticated(INVALID))?;
    let user = users::Entity::find_by_id(session.user_id)
        .filter(users::Column::DeletedAt.is_null())
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::Unauthenticated(INVALID))?;
    if session.expires_at <= now {
        return Err(DomainError::Unauthenticated(
            "Your session has expired. Sign in again.",
        ));
    }
    // Sliding expiry, written at most once a minute per session to keep reads cheap.
    if now - session.last_used_at > Duration::seconds(60) {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
            .col_expr(
                sessions::Column::ExpiresAt,
                Expr::value(now + Duration::days(svc.config.session_ttl_days)),
            )
            .filter(sessions::Column::Id.eq(session.id))
            .exec(&svc.db.write)
            .await?;
    }
    Ok(user)
}

/// Users by id, in no particular order (for batch loading).
pub async fn users_by_ids(
    db: &impl ConnectionTrait,
    ids: &[UserId],
) -> DomainResult<Vec<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// Whether two users share at least one organization (co-members see each other's email).
pub async fn share_an_org(db: &impl ConnectionTrait, a: UserId, b: UserId) -> DomainResult<bool> {
    if a == b {
        return Ok(true);
    }
    let orgs_of_a = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::OrganizationId)
        .filter(memberships::Column::UserId.eq(a.0))
        .into_query();
    let n = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(b.0))
        .filter(memberships::Column::OrganizationId.in_subquery(orgs_of_a))
        .count(db)
        .await?;
    Ok(n > 0)
}

/// Grants or revokes the platform staff flag. Returns false when no user has that email.
pub async fn set_staff(svc: &Services, email: &str, staff: bool) -> DomainResult<bool> {
    let email = Email::parse(email)?;
    let res = users::Entity::update_many()
        .col_expr(users::Column::IsStaff, Expr::value(staff))
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .exec(&svc.db.write)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Points the user's active organization somewhere (or nowhere).
pub async fn set_active_org(
    db: &impl ConnectionTrait,
    user: users::Model,
    org: Option<OrgId>,
) -> DomainResult<users::Model> {
    let mut am: users::ActiveModel = user.into();
    am.active_organization_id = Set(org);
    Ok(am.update(db).await?)
}

/// The live (not deleted) account of an address.
pub(crate) async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &Email,
) -> DomainResult<Option<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?)
}

pub(crate) async fn create_session(
    db: &impl ConnectionTrait,
    svc: &Services,
    user_id: UserId,
    client: &Client,
) -> DomainResult<String> {
    create_session_of(db, svc, user_id, client, SessionKind::Api).await
}

async fn create_session_of(
    db: &impl ConnectionTrait,
    svc: &Services,
    user_id: UserId,
    client: &Client,
    kind: SessionKind,
) -> DomainResult<String> {
    let now = svc.now();
    let (token, hash) = match kind {
        SessionKind::Api => tokens::new_session_token(),
        SessionKind::Page => tokens::new_page_session_token(),
    };
    sessions::ActiveModel {
        id: Set(SessionId::generate()),
        user_id: Set(user_id),
        token_hash: Set(hash),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(now + Duration::days(svc.config.session_ttl_days)),
        user_agent: Set(client.user_agent.clone()),
        ip: Set((client != &Client::internal()).then(|| client.ip.to_string())),
        kind: Set(kind),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Referral codes: 8 characters from an alphabet without look-alikes (31^8 ≈ 8.5·10^11).
async fn unique_referral_code(db: &impl ConnectionTrait) -> DomainResult<String> {
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    for _ in 0..8 {
        let code: String = {
            let mut rng = rand::rng();
            (0..8)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        };
        let taken = users::Entity::find()
            .filter(users::Column::ReferralCode.eq(&code))
            .count(db)
            .await?;
        if taken == 0 {
            return Ok(code);
        }
    }
    Err(anyhow::anyhow!("could not find a free referral code").into())
}

fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// Maps a unique-constraint violation to `err`; anything else stays internal.
pub(crate) fn unique_violation(e: sea_orm::DbErr, err: DomainError) -> DomainError {
    match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => err,
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(
            Email::parse("  Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.io",
            "a b@x.io",
            "ana@localhost",
            "a..b@x.io",
            "ana@-x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_and_names_have_bounds() {
        assert!(Password::parse("123456789").is_err());
        assert!(Password::parse("1234567890").is_ok());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert!(Name::parse("   ", "name").is_err());
        assert!(Name::parse(&"n".repeat(101), "name").is_err());
        assert_eq!(Name::parse(" Ana ", "name").unwrap().as_str(), "Ana");
    }

    #[test]
    fn names_lose_control_and_bidi_characters_but_keep_joiners() {
        // "evil\u{202E}gpj.exe" would show as "evilexe.jpg" in a mail client.
        assert_eq!(
            Name::parse("evil\u{202E}gpj.exe", "name").unwrap().as_str(),
            "evilgpj.exe"
        );
        assert_eq!(
            clean_name("A\u{200E}na\u{2066}\u{2069}\u{061C}\u{0007}"),
            "Ana"
        );
        assert_eq!(clean_name("Ana\nSmith\t"), "Ana Smith");
        // ZWJ family emoji and a ZWNJ in Persian survive.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(clean_name(family), family);
        assert_eq!(
            clean_name("\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}"),
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}"
        );
        assert!(
            Name::parse("\u{202E}\u{200F}", "name").is_err(),
            "nothing left"
        );
    }
}
