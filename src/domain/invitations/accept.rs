//! Opening and accepting invitations: the token, the preview and the single-use accept.
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, Func},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
};
use serde_json::json;

use super::{status, Status};
use crate::db::Tx;
use crate::domain::{
    activity::ActivityType,
    ids::UserId,
    metrics::{
        probe::{Probe, Scopes},
        sql::Only,
    },
    orgs,
    ratelimit::{self, Client},
    referrals,
    tokens::Purpose,
    DomainError, DomainResult, Services,
};
use crate::outbox::{self, Actor, Event, WebhookEvent};
use entity::enums::InvitationState;
use entity::{invitations, memberships, organizations, users};

/// The invitation a token names: the copyable token of `Invitation.url` or the one its
/// email carries. A malformed, forged or superseded (re-sent) token is NOT_FOUND; the
/// statuses are the caller's to check.
pub async fn by_token(
    svc: &Services,
    db: &impl ConnectionTrait,
    token: &str,
) -> DomainResult<invitations::Model> {
    const GONE: DomainError = DomainError::NotFound("Invitation");
    let id = crate::domain::tokens::Keys::claimed_id(token).ok_or(GONE)?;
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
    if orgs::membership(&*tx, inv.organization_id, user.id)
        .await?
        .is_some()
    {
        return Err(DomainError::AlreadyMember);
    }
    let proven = proves_email(svc, &inv, token);
    if user.email_verified_at.is_none() && !proven {
        drop(tx);
        return Err(crate::domain::accounts::needs_verification(svc, client, user).await?);
    }
    if proven {
        crate::domain::accounts::mark_verified(&*tx, now, user).await?;
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
fn first_sender(inv: &invitations::Model) -> UserId {
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
        .col_expr(
            invitations::Column::Status,
            Expr::value(InvitationState::Accepted),
        )
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
        .filter(invitations::Column::Status.eq(InvitationState::Pending))
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
    let role = inv.role;
    let m = orgs::add_member(tx, now, &org, user, role, via).await?;
    referrals::record(
        tx,
        now,
        Some(org.id),
        Some(user.id),
        "accepted",
        Some(("invitation", inv.id.0)),
        None,
    )
    .await?;
    outbox::record(
        tx,
        now,
        Event {
            org: org.id,
            kind: ActivityType::InvitationAccepted,
            actor: Actor::user(user.id),
            resource: None,
            summary: format!("{} accepted the invitation to {}", user.name, org.name),
            data: json!({
                "invitationId": inv.id.to_string(),
                "inviterId": inv.invited_by_user_id.to_string(),
                "userId": user.id.to_string(),
                "role": role.as_api(),
            }),
            webhook: Some(WebhookEvent {
                event_type: "invitation.accepted",
                data: json!({
                    "invitation_id": inv.id.to_string(),
                    "organization_id": org.id.to_string(),
                    "inviter_id": inv.invited_by_user_id.to_string(),
                    "user_id": user.id.to_string(),
                }),
            }),
        },
    )
    .await?;
    crate::domain::notifications::fanout::on_invitation_accepted(
        tx,
        now,
        &org,
        inv.invited_by_user_id,
        user,
    )
    .await?;
    Ok(m)
}
