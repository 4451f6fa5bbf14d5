//! One send of an invitation, as `create` and `resend` both make it: the sender's hourly
//! budget, and the send's row, email, activity event and webhook message.
use chrono::{DateTime, Duration, Utc};
use entity::ids::InvitationSendId;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder,
};
use serde_json::json;

use crate::db::Tx;
use crate::domain::{activity::ActivityType, ids::UserId, DomainError, DomainResult, Services};
use crate::outbox::{self, Actor, Event, WebhookEvent};
use entity::{invitation_sends, invitations, organizations, users};

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

/// One send: the rate-limit row, the email, the activity event and the webhook message.
pub(super) async fn record_send(
    tx: &mut Tx,
    now: DateTime<Utc>,
    sender: &users::Model,
    org: &organizations::Model,
    inv: &invitations::Model,
) -> DomainResult<()> {
    invitation_sends::ActiveModel {
        id: Set(InvitationSendId::generate()),
        invitation_id: Set(inv.id),
        sender_user_id: Set(sender.id),
        sent_at: Set(now),
    }
    .insert(&**tx)
    .await?;
    outbox::email::enqueue(tx, now, "invitation", &inv.email, inv.id, inv.token_version).await?;
    let role = inv.role;
    outbox::record(
        tx,
        now,
        Event {
            org: org.id,
            kind: ActivityType::InvitationSent,
            actor: Actor::user(sender.id),
            resource: None,
            summary: format!("{} invited {}", sender.name, inv.email),
            data: json!({
                "invitationId": inv.id.to_string(),
                "email": inv.email,
                "role": role.as_api(),
                "surface": inv.surface,
                "sendCount": inv.send_count,
            }),
            webhook: Some(WebhookEvent {
                event_type: "invitation.sent",
                data: json!({
                    "invitation_id": inv.id.to_string(),
                    "organization_id": org.id.to_string(),
                    "inviter_id": sender.id.to_string(),
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
