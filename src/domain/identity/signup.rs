//! Sign-up: attribution (invitation, shared link, referral code), the new user's workspace
//! and the growth facts it credits.
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter,
};

use super::*;
use crate::db::Tx;
use crate::domain::{
    accounts,
    ids::{ProjectId, UserId},
    invitations, metrics,
    orgs::{self, Role},
    ratelimit::{self, Client},
    referrals, sharing, DomainError, DomainResult, Services,
};
use crate::outbox::{self, WebhookEvent};
use entity::{email_tokens::Purpose, organizations, users};
use serde_json::json;

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

pub(super) fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// How a signup came about, resolved from the inputs by precedence.
pub(super) enum Via {
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
pub(super) async fn attribution(
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
pub(super) async fn invitation_for(
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
pub(super) async fn growth_probe(
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
pub(super) async fn credit_viral_signup(
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
        crate::domain::notifications::fanout::on_signup(tx, now, referrer, scope, user, through)
            .await?;
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

/// Referral codes: 8 characters from an alphabet without look-alikes (31^8 ≈ 8.5·10^11).
pub(super) async fn unique_referral_code(db: &impl ConnectionTrait) -> DomainResult<String> {
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

pub(super) fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}
