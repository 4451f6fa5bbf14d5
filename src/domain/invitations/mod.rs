//! Invitations: bulk send, re-send, revoke, preview and accept.
//!
//! An invitation is the pair (organization, email): one row, re-used by re-sends. Its token
//! is derived from (id, token_version); a re-send bumps the version, so older links stop
//! working, and nothing in the database is a usable token.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Order, PaginatorTrait, QueryFilter, Select,
};

use super::{
    access::OrgView,
    ids::{InvitationId, OrgId, UserId},
    orgs::{self, Role},
    page::{self, Page, PageRequest},
    tenancy,
    tokens::Purpose,
    DomainError, DomainResult, Services,
};
use crate::db::Tx;
use entity::enums::InvitationState;
use entity::{invitations, users};

mod accept;
mod create;
mod send;

pub(crate) use accept::accept_in_tx;
pub use accept::{accept, by_token, preview, proves_email, usable, Preview};
pub use create::{create, NewInvitations, Sent, MAX_BATCH};
use send::{rate_limited, record_send, send_budget};

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
    match inv.status {
        InvitationState::Accepted => Status::Accepted,
        InvitationState::Revoked => Status::Revoked,
        InvitationState::Pending if inv.expires_at <= now => Status::Expired,
        InvitationState::Pending => Status::Pending,
    }
}

/// Tenant-scoped query: the invitations of one organization.
pub fn in_org(org: OrgId) -> Select<invitations::Entity> {
    tenancy::in_org(org)
}

/// Tenant-scoped query: the invitations of one organization still pending at `now`.
pub fn pending_in_org(org: OrgId, now: DateTime<Utc>) -> Select<invitations::Entity> {
    in_org(org)
        .filter(invitations::Column::Status.eq(InvitationState::Pending))
        .filter(invitations::Column::ExpiresAt.gt(now))
}

async fn pending_count(tx: &Tx, org: OrgId, now: DateTime<Utc>) -> DomainResult<u64> {
    Ok(pending_in_org(org, now).count(&**tx).await?)
}

/// Loads an invitation the caller may manage (its inviter, or an ADMIN/OWNER of its org),
/// locking its organization.
async fn manageable(
    tx: &Tx,
    caller: UserId,
    id: InvitationId,
) -> DomainResult<(invitations::Model, orgs::OrgAccess)> {
    let inv = tenancy::find_for_member::<invitations::Entity>(caller, id)
        .one(&**tx)
        .await?
        .ok_or(DomainError::NotFound("Invitation"))?;
    let access = match orgs::access_locked(tx, caller, inv.organization_id).await {
        Ok(a) => a,
        // Outsiders learn nothing about the invitation.
        Err(DomainError::Forbidden) => return Err(DomainError::NotFound("Invitation")),
        Err(e) => return Err(e),
    };
    if inv.invited_by_user_id != caller {
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
    let (inv, access) = manageable(&tx, caller.id, id).await?;
    match status(&inv, now) {
        Status::Accepted => return Err(DomainError::InvitationAlreadyAccepted),
        Status::Revoked => return Err(DomainError::InvitationRevoked),
        Status::Expired if pending_count(&tx, inv.organization_id, now).await? >= svc.config.max_pending_invitations => {
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
    let (budget, retry_after) = send_budget(svc, &tx, caller.id, now).await?;
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
    let (inv, _) = manageable(&tx, caller.id, id).await?;
    match status(&inv, now) {
        Status::Accepted => return Err(DomainError::InvitationAlreadyAccepted),
        Status::Revoked => return Ok(inv),
        Status::Pending | Status::Expired => {}
    }
    let mut am: invitations::ActiveModel = inv.into();
    am.status = Set(InvitationState::Revoked);
    let inv = am.update(&*tx).await?;
    tx.commit(&svc.bus).await?;
    Ok(inv)
}

/// The copyable link of an invitation (`Invitation.url`): it opens the invitation, but
/// joining through it needs a verified address.
pub fn link(svc: &Services, inv: &invitations::Model) -> String {
    let token = svc
        .keys
        .derive(Purpose::Invitation, inv.id, inv.token_version);
    format!("{}/invite/{token}", svc.config.public_url)
}

/// The copyable link as `viewer` may see it: its sender and the organization's admins and
/// owners, while it is pending; None for anyone else.
pub fn copyable_link(
    svc: &Services,
    inv: &invitations::Model,
    view: &OrgView,
    viewer: UserId,
) -> Option<String> {
    let allowed = viewer == inv.invited_by_user_id || view.role >= Some(Role::Admin);
    (allowed && status(inv, svc.now()) == Status::Pending).then(|| link(svc, inv))
}

/// The link printed in the invitation's email: it also proves the address it was sent to,
/// so signing up through it verifies that address at once. Never shown by the API.
pub fn email_link(svc: &Services, inv: &invitations::Model) -> String {
    let token = svc
        .keys
        .derive(Purpose::InvitationEmail, inv.id, inv.token_version);
    format!("{}/invite/{token}", svc.config.public_url)
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
        Some(Status::Accepted) => {
            q.filter(invitations::Column::Status.eq(InvitationState::Accepted))
        }
        Some(Status::Revoked) => q.filter(invitations::Column::Status.eq(InvitationState::Revoked)),
        Some(Status::Pending) => pending_in_org(org, now),
        Some(Status::Expired) => q
            .filter(invitations::Column::Status.eq(InvitationState::Pending))
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
    let inv = tenancy::find_for_member::<invitations::Entity>(caller, id)
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::NotFound("Invitation"))?;
    orgs::access(&svc.db.read, caller, inv.organization_id).await?;
    Ok(inv)
}
