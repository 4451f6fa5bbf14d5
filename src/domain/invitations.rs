//! Invitations: bulk send, re-send, revoke, preview and accept.
//!
//! An invitation is the pair (organization, email): one row, re-used by re-sends. Its token
//! is derived from (id, token_version); a re-send bumps the version, so older links stop
//! working, and nothing in the database is a usable token.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::{Expr, Func},
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    Select,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    activity::ActivityType,
    entitlements,
    identity::Email,
    ids::{InvitationId, OrgId, UserId},
    metrics::{
        probe::{Probe, Scopes},
        sql::Only,
    },
    orgs::{self, InvitePolicy, Role},
    page::{self, Page, PageRequest},
    ratelimit::{self, Client},
    referrals,
    tokens::Purpose,
    DomainError, DomainResult, Services,
};
use crate::outbox::{self, Actor, Event, Tx, WebhookEvent};
use entity::{invitation_sends, invitations, memberships, organizations, users};

/// Most emails in one `createInvitations` call.
pub const MAX_BATCH: usize = 100;
/// Longest accepted surface label.
const MAX_SURFACE: usize = 100;

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Sent, not yet used, not expired.
    Pending,
    /// Used.
    Accepted,
    /// Past `expires_at` without being used.
    Expired,
    /// Withdrawn.
    Revoked,
}

/// The status of an invitation at `now` (EXPIRED as soon as `expires_at` has passed).
pub fn status(inv: &invitations::Model, now: DateTime<Utc>) -> Status {
    match inv.status.as_str() {
        "accepted" => Status::Accepted,
        "revoked" => Status::Revoked,
        _ if inv.expires_at <= now => Status::Expired,
        _ => Status::Pending,
    }
}

/// Tenant-scoped query: the invitations of one organization.
pub fn in_org(org: OrgId) -> Select<invitations::Entity> {
    invitations::Entity::find().filter(invitations::Column::OrganizationId.eq(org.0))
}

/// What `createInvitations` asks for.
#[derive(Clone, Debug)]
pub struct NewInvitations {
    /// Where to.
    pub org: OrgId,
    /// Raw addresses, each validated on its own.
    pub emails: Vec<String>,
    /// The role they will get.
    pub role: Role,
    /// Product surface label.
    pub surface: Option<String>,
}

/// Result of a bulk send: the invitations that went out, and per-email errors by index.
#[derive(Debug, Default)]
pub struct Sent {
    /// Created or re-sent invitations.
    pub invitations: Vec<invitations::Model>,
    /// `(index in the input, error)`.
    pub errors: Vec<(usize, DomainError)>,
}

/// The per-user send budget: how many more sends are allowed now, and when one frees up.
///
/// The budget spans all of the sender's organizations, so the sender's row is locked before
/// it is read (after the organization's row: the order every transaction keeps), and
/// parallel sends into different organizations take turns on it instead of each reading
/// the same budget.
/// Unverified senders get a smaller budget (`KFACTOR_UNVERIFIED_INVITATION_SENDS_PER_HOUR`).
async fn send_budget(
    svc: &Services,
    tx: &Tx,
    sender: UserId,
    now: DateTime<Utc>,
) -> DomainResult<(u64, u64)> {
    use sea_orm::QuerySelect;
    let me = users::Entity::find_by_id(sender.0)
        .lock_exclusive()
        .one(&**tx)
        .await?
        .ok_or(DomainError::Unauthenticated("Sign in to do this."))?;
    let window_start = now - Duration::hours(1);
    let recent = invitation_sends::Entity::find()
        .filter(invitation_sends::Column::SenderUserId.eq(sender.0))
        .filter(invitation_sends::Column::SentAt.gt(window_start))
        .order_by(invitation_sends::Column::SentAt, Order::Asc)
        .all(&**tx)
        .await?;
    let limit = if me.email_verified_at.is_some() {
        svc.config.invitation_sends_per_hour
    } else {
        svc.config
            .invitation_sends_per_hour
            .min(svc.config.safety.unverified_invitation_sends_per_hour)
    };
    let used = recent.len() as u64;
    // The send whose leaving the window brings the count under the limit frees a slot.
    let retry_after = recent
        .get(used.saturating_sub(limit) as usize)
        .map(|s| (s.sent_at + Duration::hours(1) - now).num_seconds().max(1) as u64)
        .unwrap_or(1);
    Ok((limit.saturating_sub(used), retry_after))
}

fn rate_limited(retry_after_seconds: u64) -> DomainError {
    DomainError::RateLimited {
        retry_after_seconds,
    }
}

/// Sends invitations to many addresses. Each address succeeds or fails on its own; a
/// pending invitation to the same address is re-sent (new token, new expiry), never
/// duplicated.
pub async fn create(
    svc: &Services,
    caller: &users::Model,
    req: NewInvitations,
) -> DomainResult<Sent> {
    if req.emails.is_empty() || req.emails.len() > MAX_BATCH {
        return Err(DomainError::invalid(
            &["input", "emails"],
            format!("Send between 1 and {MAX_BATCH} invitations at a time."),
        ));
    }
    if req.role == Role::Owner {
        return Err(DomainError::invalid(
            &["input", "role"],
            "Owners cannot be invited; invite an admin and make them an owner once they joined.",
        ));
    }
    let surface = clean_surface(req.surface)?;
    let now = svc.now();
    let me = UserId(caller.id);
    let mut tx = Tx::begin(&svc.db).await?;
    let access = orgs::access_locked(&tx, me, req.org).await?;
    may_invite(&access, req.role)?;
    let (mut budget, retry_after) = send_budget(svc, &tx, me, now).await?;
    if budget == 0 {
        return Err(rate_limited(retry_after));
    }
    let mut pending = pending_count(&tx, req.org, now).await?;

    let mut sent = Sent::default();
    // Invitations this call created (not re-sent): new growth facts.
    let mut created: Vec<Uuid> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (i, raw) in req.emails.iter().enumerate() {
        let email = match Email::parse(raw) {
            Ok(e) => e,
            Err(_) => {
                sent.errors.push((
                    i,
                    DomainError::invalid(
                        &[],
                        format!("{:?} is not a valid email address.", raw.trim()),
                    ),
                ));
                continue;
            }
        };
        if seen.iter().any(|s| s == email.as_str()) {
            sent.errors.push((
                i,
                DomainError::invalid(&[], format!("{} is listed twice.", email.as_str())),
            ));
            continue;
        }
        seen.push(email.as_str().to_string());
        if is_member(&*tx, req.org, &email).await? {
            sent.errors.push((i, DomainError::AlreadyMember));
            continue;
        }
        if budget == 0 {
            sent.errors.push((i, rate_limited(retry_after)));
            continue;
        }
        let existing = in_org(req.org)
            .filter(invitations::Column::Email.eq(email.as_str()))
            .one(&*tx)
            .await?;
        let counts_as_new_pending = existing
            .as_ref()
            .is_none_or(|e| status(e, now) != Status::Pending);
        if counts_as_new_pending && pending >= svc.config.max_pending_invitations {
            sent.errors.push((
                i,
                DomainError::LimitReached {
                    upgrade: None,
                    feature: "pending_invitations".into(),
                    message: format!(
                        "{} already has {pending} pending invitations, the most allowed. Revoke some or wait for them to be accepted.",
                        access.org.name
                    ),
                },
            ));
            continue;
        }
        if counts_as_new_pending {
            // A new pending invitation takes a member seat and one of the month's sends.
            // Both must fit before either is recorded.
            let consumed = async {
                entitlements::ensure_room(&*tx, svc, &access.org, "invitations_per_month", 1)
                    .await?;
                entitlements::ensure_room(&*tx, svc, &access.org, "members", 1).await?;
                entitlements::consume(&mut tx, svc, &access.org, "invitations_per_month", 1)
                    .await?;
                entitlements::consume(&mut tx, svc, &access.org, "members", 1).await
            }
            .await;
            if let Err(e) = consumed {
                match e {
                    DomainError::LimitReached { .. } | DomainError::FeatureNotInPlan { .. } => {
                        sent.errors.push((i, e));
                        continue;
                    }
                    other => return Err(other),
                }
            }
        }
        let inv = match existing {
            // Someone else's pending invitation is theirs to re-send, unless the caller
            // manages the organization's invitations.
            Some(e)
                if status(&e, now) == Status::Pending
                    && e.invited_by_user_id != me.0
                    && access.role < Role::Admin =>
            {
                sent.errors.push((
                    i,
                    DomainError::PermissionDenied(format!(
                        "{} already has a pending invitation from someone else.",
                        e.email
                    )),
                ));
                continue;
            }
            Some(e) => {
                let revived = status(&e, now) != Status::Pending;
                let mut am: invitations::ActiveModel = e.clone().into();
                am.status = Set("pending".into());
                am.role = Set(req.role.as_str().into());
                am.token_version = Set(e.token_version + 1);
                am.last_sent_at = Set(now);
                am.send_count = Set(e.send_count + 1);
                am.expires_at = Set(now + Duration::days(svc.config.invitation_ttl_days));
                if revived {
                    // A new round for the same pair: the caller sends it, and what happened
                    // to the previous round (opened, accepted) no longer describes it.
                    am.invited_by_user_id = Set(me.0);
                    am.opened_at = Set(None);
                    am.accepted_at = Set(None);
                    am.accepted_by_user_id = Set(None);
                }
                am.update(&*tx).await?
            }
            None => {
                // A team invitation cannot create a new user, so it never counts in K: the
                // address has an account, or is the inviter's own mailbox (`ana+2@` is
                // `ana@`), which would let anyone inflate K with aliases of themselves.
                let team_invite = referrals::mailbox(email.as_str())
                    == referrals::mailbox(&caller.email)
                    || user_exists(&*tx, &email).await?;
                let inv = invitations::ActiveModel {
                    id: Set(InvitationId::generate().0),
                    organization_id: Set(req.org.0),
                    email: Set(email.as_str().into()),
                    role: Set(req.role.as_str().into()),
                    invited_by_user_id: Set(me.0),
                    surface: Set(surface.clone()),
                    status: Set("pending".into()),
                    token_version: Set(1),
                    team_invite: Set(team_invite),
                    created_at: Set(now),
                    last_sent_at: Set(now),
                    send_count: Set(1),
                    expires_at: Set(now + Duration::days(svc.config.invitation_ttl_days)),
                    opened_at: Set(None),
                    accepted_at: Set(None),
                    accepted_by_user_id: Set(None),
                    first_sent_by_user_id: Set(Some(me.0)),
                    first_opened_at: Set(None),
                    first_accepted_at: Set(None),
                    first_accepted_by_user_id: Set(None),
                }
                .insert(&*tx)
                .await?;
                created.push(inv.id);
                inv
            }
        };
        if counts_as_new_pending {
            // A new invitation, or a new round of an old pair: the attribution log records it.
            referrals::record(
                &tx,
                now,
                Some(req.org),
                Some(me),
                "invited",
                Some(("invitation", inv.id)),
                None,
            )
            .await?;
            pending += 1;
        }
        budget -= 1;
        record_send(&mut tx, now, caller, &access.org, &inv).await?;
        sent.invitations.push(inv);
    }
    if !created.is_empty() {
        Probe::created(
            &mut tx,
            svc,
            Only {
                invitations: created,
                ..Only::default()
            },
            &[me.0],
        )
        .await?;
    }
    if !sent.invitations.is_empty() {
        super::activation::on(
            &mut tx,
            svc,
            crate::config::ActivationEvent::InvitationSent,
            now,
            caller,
            req.org,
        )
        .await?;
    }
    tx.commit(&svc.bus).await?;
    Ok(sent)
}

fn clean_surface(surface: Option<String>) -> DomainResult<Option<String>> {
    let s = surface
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if s.as_ref().is_some_and(|s| s.chars().count() > MAX_SURFACE) {
        return Err(DomainError::invalid(
            &["input", "surface"],
            format!("surface can be at most {MAX_SURFACE} characters long."),
        ));
    }
    Ok(s)
}

/// The invite policy and role rules.
fn may_invite(access: &orgs::OrgAccess, role: Role) -> DomainResult<()> {
    if InvitePolicy::parse(&access.org.invite_policy) == InvitePolicy::AdminsOnly {
        access.require(Role::Admin, "invite people to this organization")?;
    }
    if role == Role::Admin {
        access.require(Role::Admin, "invite admins")?;
    }
    Ok(())
}

/// Tenant-scoped query: the invitations of one organization still pending at `now`.
pub fn pending_in_org(org: OrgId, now: DateTime<Utc>) -> Select<invitations::Entity> {
    in_org(org)
        .filter(invitations::Column::Status.eq("pending"))
        .filter(invitations::Column::ExpiresAt.gt(now))
}

async fn pending_count(tx: &Tx, org: OrgId, now: DateTime<Utc>) -> DomainResult<u64> {
    Ok(pending_in_org(org, now).count(&**tx).await?)
}

async fn user_exists(db: &impl ConnectionTrait, email: &Email) -> DomainResult<bool> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .count(db)
        .await?
        > 0)
}

async fn is_member(db: &impl ConnectionTrait, org: OrgId, email: &Email) -> DomainResult<bool> {
    let Some(user) = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    Ok(orgs::membership(db, org, UserId(user.id)).await?.is_some())
}

/// One send: the rate-limit row, the email, the activity event and the webhook message.
async fn record_send(
    tx: &mut Tx,
    now: DateTime<Utc>,
    sender: &users::Model,
    org: &organizations::Model,
    inv: &invitations::Model,
) -> DomainResult<()> {
    invitation_sends::ActiveModel {
        id: Set(Uuid::now_v7()),
        invitation_id: Set(inv.id),
        sender_user_id: Set(sender.id),
        sent_at: Set(now),
    }
    .insert(&**tx)
    .await?;
    crate::mailer::enqueue(tx, now, "invitation", &inv.email, inv.id, inv.token_version).await?;
    let role = Role::parse(&inv.role);
    outbox::record(
        tx,
        now,
        Event {
            org: OrgId(org.id),
            kind: ActivityType::InvitationSent,
            actor: Actor::user(sender.id),
            resource: None,
            summary: format!("{} invited {}", sender.name, inv.email),
            data: json!({
                "invitationId": InvitationId(inv.id).to_string(),
                "email": inv.email,
                "role": role.as_api(),
                "surface": inv.surface,
                "sendCount": inv.send_count,
            }),
            webhook: Some(WebhookEvent {
                event_type: "invitation.sent",
                data: json!({
                    "invitation_id": InvitationId(inv.id).to_string(),
                    "organization_id": OrgId(org.id).to_string(),
                    "inviter_id": UserId(sender.id).to_string(),
                    "email": inv.email,
                    "role": role.as_api(),
                    "surface": inv.surface,
                }),
            }),
        },
    )
    .await?;
    Ok(())
}

/// Loads an invitation the caller may manage (its inviter, or an ADMIN/OWNER of its org),
/// locking its organization.
async fn manageable(
    tx: &Tx,
    caller: UserId,
    id: InvitationId,
) -> DomainResult<(invitations::Model, orgs::OrgAccess)> {
    let inv = invitations::Entity::find_by_id(id.0)
        .one(&**tx)
        .await?
        .ok_or(DomainError::NotFound("Invitation"))?;
    let access = match orgs::access_locked(tx, caller, OrgId(inv.organization_id)).await {
        Ok(a) => a,
        // Outsiders learn nothing about the invitation.
        Err(DomainError::Forbidden) => return Err(DomainError::NotFound("Invitation")),
        Err(e) => return Err(e),
    };
    if inv.invited_by_user_id != caller.0 {
        access.require(Role::Admin, "manage other people's invitations")?;
    }
    Ok((inv, access))
}

/// Re-sends an invitation: new token (older links stop working), new expiry, a new email.
pub async fn resend(
    svc: &Services,
    caller: &users::Model,
    id: InvitationId,
) -> DomainResult<invitations::Model> {
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let (inv, access) = manageable(&tx, UserId(caller.id), id).await?;
    match status(&inv, now) {
        Status::Accepted => return Err(DomainError::InvitationAlreadyAccepted),
        Status::Revoked => return Err(DomainError::InvitationRevoked),
        Status::Expired if pending_count(&tx, OrgId(inv.organization_id), now).await? >= svc.config.max_pending_invitations => {
            return Err(DomainError::LimitReached {
                upgrade: None,
                feature: "pending_invitations".into(),
                message: format!(
                    "{} already has the most pending invitations allowed. Revoke some or wait for them to be accepted.",
                    access.org.name
                ),
            })
        }
        Status::Pending | Status::Expired => {}
    }
    let (budget, retry_after) = send_budget(svc, &tx, UserId(caller.id), now).await?;
    if budget == 0 {
        return Err(rate_limited(retry_after));
    }
    let mut am: invitations::ActiveModel = inv.clone().into();
    am.token_version = Set(inv.token_version + 1);
    am.last_sent_at = Set(now);
    am.send_count = Set(inv.send_count + 1);
    am.expires_at = Set(now + Duration::days(svc.config.invitation_ttl_days));
    let inv = am.update(&*tx).await?;
    record_send(&mut tx, now, caller, &access.org, &inv).await?;
    tx.commit(&svc.bus).await?;
    Ok(inv)
}

/// Revokes an invitation: its link stops working at once.
pub async fn revoke(
    svc: &Services,
    caller: &users::Model,
    id: InvitationId,
) -> DomainResult<invitations::Model> {
    let now = svc.now();
    let tx = Tx::begin(&svc.db).await?;
    let (inv, _) = manageable(&tx, UserId(caller.id), id).await?;
    match status(&inv, now) {
        Status::Accepted => return Err(DomainError::InvitationAlreadyAccepted),
        Status::Revoked => return Ok(inv),
        Status::Pending | Status::Expired => {}
    }
    let mut am: invitations::ActiveModel = inv.into();
    am.status = Set("revoked".into());
    let inv = am.update(&*tx).await?;
    tx.commit(&svc.bus).await?;
    Ok(inv)
}

/// The invitation a token names: the copyable token of `Invitation.url` or the one its
/// email carries. A malformed, forged or superseded (re-sent) token is NOT_FOUND; the
/// statuses are the caller's to check.
pub async fn by_token(
    svc: &Services,
    db: &impl ConnectionTrait,
    token: &str,
) -> DomainResult<invitations::Model> {
    const GONE: DomainError = DomainError::NotFound("Invitation");
    let id = super::tokens::Keys::claimed_id(token).ok_or(GONE)?;
    let inv = invitations::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(GONE)?;
    let current = |purpose| svc.keys.verify(purpose, token, inv.id, inv.token_version);
    if !(current(Purpose::Invitation) || current(Purpose::InvitationEmail)) {
        return Err(GONE);
    }
    // An organization being deleted invites nobody any more.
    let closing = organizations::Entity::find_by_id(inv.organization_id)
        .one(db)
        .await?
        .is_none_or(|o| o.deletion_scheduled_for.is_some());
    if closing {
        return Err(GONE);
    }
    Ok(inv)
}

/// Whether `token` is the invitation's emailed link (not the copyable one): whoever holds it
/// received the email, so it proves the invited address.
pub fn proves_email(svc: &Services, inv: &invitations::Model, token: &str) -> bool {
    svc.keys
        .verify(Purpose::InvitationEmail, token, inv.id, inv.token_version)
}

/// The copyable link of an invitation (`Invitation.url`): it opens the invitation, but
/// joining through it needs a verified address.
pub fn link(svc: &Services, inv: &invitations::Model) -> String {
    let token = svc
        .keys
        .derive(Purpose::Invitation, inv.id, inv.token_version);
    format!("{}/invite/{token}", svc.config.public_url)
}

/// The link printed in the invitation's email: it also proves the address it was sent to,
/// so signing up through it verifies that address at once. Never shown by the API.
pub fn email_link(svc: &Services, inv: &invitations::Model) -> String {
    let token = svc
        .keys
        .derive(Purpose::InvitationEmail, inv.id, inv.token_version);
    format!("{}/invite/{token}", svc.config.public_url)
}

/// What an invitee sees before accepting.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The invitation (with `opened_at` set).
    pub invitation: invitations::Model,
    /// Its organization.
    pub organization: organizations::Model,
    /// Who sent it.
    pub inviter: users::Model,
}

/// PUBLIC: the invitation behind a token. Records the first open.
pub async fn preview(svc: &Services, client: &Client, token: &str) -> DomainResult<Preview> {
    ratelimit::public_lookup(svc, client)?;
    let mut inv = by_token(svc, &svc.db.read, token).await?;
    if inv.opened_at.is_none() {
        let now = svc.now();
        let mut tx = Tx::begin(&svc.db).await?;
        let probe = Probe::open(
            &tx,
            svc,
            Only {
                invitations: vec![inv.id],
                ..Only::default()
            },
            &[],
            Scopes::Both,
        )
        .await?;
        invitations::Entity::update_many()
            .col_expr(invitations::Column::OpenedAt, Expr::value(now))
            .col_expr(
                invitations::Column::FirstOpenedAt,
                Func::coalesce([
                    Expr::col(invitations::Column::FirstOpenedAt),
                    Expr::value(now),
                ])
                .into(),
            )
            .filter(invitations::Column::Id.eq(inv.id))
            .filter(invitations::Column::OpenedAt.is_null())
            .exec(&*tx)
            .await?;
        probe.close(&mut tx, svc).await?;
        tx.commit(&svc.bus).await?;
        inv.opened_at = Some(now);
    }
    let organization = organizations::Entity::find_by_id(inv.organization_id)
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::NotFound("Invitation"))?;
    let inviter = users::Entity::find_by_id(inv.invited_by_user_id)
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::NotFound("Invitation"))?;
    Ok(Preview {
        invitation: inv,
        organization,
        inviter,
    })
}

/// Checks that an invitation can still be used.
pub fn usable(inv: &invitations::Model, now: DateTime<Utc>) -> DomainResult<()> {
    match status(inv, now) {
        Status::Pending => Ok(()),
        Status::Accepted => Err(DomainError::InvitationAlreadyAccepted),
        Status::Expired => Err(DomainError::InvitationExpired),
        Status::Revoked => Err(DomainError::InvitationRevoked),
    }
}

/// A signed-in user accepts an invitation sent to their email. Single-use and atomic: of two
/// concurrent accepts, one wins and the other gets INVITATION_ALREADY_ACCEPTED.
///
/// The address must be proven: either the user verified it already, or the token is the
/// invitation's emailed link (which verifies it now). Otherwise EMAIL_NOT_VERIFIED, and a
/// verification email goes out (within its rate limits).
pub async fn accept(
    svc: &Services,
    client: &Client,
    user: &users::Model,
    token: &str,
) -> DomainResult<memberships::Model> {
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    // What the token names answers with the same codes as signUp's inviteToken.
    let at_token = |e: DomainError| e.at(&["token"]);
    let inv = by_token(svc, &*tx, token).await.map_err(at_token)?;
    usable(&inv, now).map_err(at_token)?;
    if inv.email != user.email {
        return Err(at_token(DomainError::InvitationEmailMismatch));
    }
    if orgs::membership(&*tx, OrgId(inv.organization_id), UserId(user.id))
        .await?
        .is_some()
    {
        return Err(DomainError::AlreadyMember);
    }
    let proven = proves_email(svc, &inv, token);
    if user.email_verified_at.is_none() && !proven {
        drop(tx);
        return Err(super::accounts::needs_verification(svc, client, user).await?);
    }
    if proven {
        super::accounts::mark_verified(&*tx, now, user).await?;
    }
    let probe = Probe::open(
        &tx,
        svc,
        Only {
            users: vec![user.id],
            invitations: vec![inv.id],
            ..Only::default()
        },
        &[user.id, inv.invited_by_user_id, first_sender(&inv)],
        Scopes::Both,
    )
    .await?;
    let m = accept_in_tx(&mut tx, now, &inv, user, "invitation").await?;
    probe.close(&mut tx, svc).await?;
    tx.commit(&svc.bus).await?;
    Ok(m)
}

/// Who sent an invitation first (rows from before the column existed fall back to the inviter).
fn first_sender(inv: &invitations::Model) -> Uuid {
    inv.first_sent_by_user_id.unwrap_or(inv.invited_by_user_id)
}

/// Marks the invitation accepted by `user` (only if still pending), adds the membership and
/// writes INVITATION_ACCEPTED with its `invitation.accepted` message.
pub(crate) async fn accept_in_tx(
    tx: &mut Tx,
    now: DateTime<Utc>,
    inv: &invitations::Model,
    user: &users::Model,
    via: &str,
) -> DomainResult<memberships::Model> {
    // The conditional update is the single-use guard: a concurrent accept that committed
    // first leaves nothing pending to update.
    let claimed = invitations::Entity::update_many()
        .col_expr(invitations::Column::Status, Expr::value("accepted"))
        .col_expr(invitations::Column::AcceptedAt, Expr::value(now))
        .col_expr(invitations::Column::AcceptedByUserId, Expr::value(user.id))
        // The pair's first acceptance (and, since accepting needs the link, its first open)
        // outlive later rounds.
        .col_expr(
            invitations::Column::FirstAcceptedAt,
            Func::coalesce([
                Expr::col(invitations::Column::FirstAcceptedAt),
                Expr::value(now),
            ])
            .into(),
        )
        .col_expr(
            invitations::Column::FirstAcceptedByUserId,
            Func::coalesce([
                Expr::col(invitations::Column::FirstAcceptedByUserId),
                Expr::value(user.id),
            ])
            .into(),
        )
        .col_expr(
            invitations::Column::FirstOpenedAt,
            Func::coalesce([
                Expr::col(invitations::Column::FirstOpenedAt),
                Expr::value(now),
            ])
            .into(),
        )
        .filter(invitations::Column::Id.eq(inv.id))
        .filter(invitations::Column::Status.eq("pending"))
        .filter(invitations::Column::TokenVersion.eq(inv.token_version))
        .filter(invitations::Column::ExpiresAt.gt(now))
        .exec(&**tx)
        .await?;
    if claimed.rows_affected == 0 {
        let fresh = invitations::Entity::find_by_id(inv.id)
            .one(&**tx)
            .await?
            .ok_or(DomainError::NotFound("Invitation"))?;
        usable(&fresh, now)?;
        if fresh.token_version != inv.token_version {
            // Re-sent meanwhile: the link used is no longer the current one.
            return Err(DomainError::NotFound("Invitation"));
        }
        return Err(DomainError::InvitationAlreadyAccepted);
    }
    let org = organizations::Entity::find_by_id(inv.organization_id)
        .one(&**tx)
        .await?
        .ok_or(DomainError::NotFound("Organization"))?;
    let role = Role::parse(&inv.role);
    let m = orgs::add_member(tx, now, &org, user, role, via).await?;
    referrals::record(
        tx,
        now,
        Some(OrgId(org.id)),
        Some(UserId(user.id)),
        "accepted",
        Some(("invitation", inv.id)),
        None,
    )
    .await?;
    outbox::record(
        tx,
        now,
        Event {
            org: OrgId(org.id),
            kind: ActivityType::InvitationAccepted,
            actor: Actor::user(user.id),
            resource: None,
            summary: format!("{} accepted the invitation to {}", user.name, org.name),
            data: json!({
                "invitationId": InvitationId(inv.id).to_string(),
                "inviterId": UserId(inv.invited_by_user_id).to_string(),
                "userId": UserId(user.id).to_string(),
                "role": role.as_api(),
            }),
            webhook: Some(WebhookEvent {
                event_type: "invitation.accepted",
                data: json!({
                    "invitation_id": InvitationId(inv.id).to_string(),
                    "organization_id": OrgId(org.id).to_string(),
                    "inviter_id": UserId(inv.invited_by_user_id).to_string(),
                    "user_id": UserId(user.id).to_string(),
                }),
            }),
        },
    )
    .await?;
    Ok(m)
}

/// One page of an organization's invitations, newest first, optionally by status.
pub async fn list(
    svc: &Services,
    org: OrgId,
    filter: Option<Status>,
    req: PageRequest,
) -> DomainResult<Page<invitations::Model>> {
    let now = svc.now();
    let mut q = in_org(org);
    q = match filter {
        None => q,
        Some(Status::Accepted) => q.filter(invitations::Column::Status.eq("accepted")),
        Some(Status::Revoked) => q.filter(invitations::Column::Status.eq("revoked")),
        Some(Status::Pending) => pending_in_org(org, now),
        Some(Status::Expired) => q
            .filter(invitations::Column::Status.eq("pending"))
            .filter(invitations::Column::ExpiresAt.lte(now)),
    };
    page::fetch(&svc.db.read, q, invitations::Column::Id, Order::Desc, req).await
}

/// An invitation the caller may see (a member of its organization).
pub async fn get(
    svc: &Services,
    caller: UserId,
    id: InvitationId,
) -> DomainResult<invitations::Model> {
    let inv = invitations::Entity::find_by_id(id.0)
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::NotFound("Invitation"))?;
    orgs::access(&svc.db.read, caller, OrgId(inv.organization_id)).await?;
    Ok(inv)
}
