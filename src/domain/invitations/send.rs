//! Sending invitations: a bulk `create` and the per-send bookkeeping `resend` shares.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use super::{in_org, pending_count, status, Status};
use crate::domain::{
    activity::ActivityType,
    entitlements,
    identity::Email,
    ids::{InvitationId, OrgId, UserId},
    metrics::{probe::Probe, sql::Only},
    orgs::{self, InvitePolicy, Role},
    referrals, DomainError, DomainResult, Services,
};
use crate::outbox::{self, Actor, Event, Tx, WebhookEvent};
use entity::{invitation_sends, invitations, organizations, users};

/// Most emails in one `createInvitations` call.
pub const MAX_BATCH: usize = 100;
/// Longest accepted surface label.
const MAX_SURFACE: usize = 100;

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
pub(super) async fn send_budget(
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

pub(super) fn rate_limited(retry_after_seconds: u64) -> DomainError {
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
        crate::domain::activation::on(
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
pub(super) async fn record_send(
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
