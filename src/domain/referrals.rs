//! Referral codes and the attribution log (`referral_events`).
use chrono::{DateTime, Utc};
use entity::ids::ReferralEventId;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use super::{
    identity::Email,
    ids::{OrgId, UserId},
    DomainError, DomainResult,
};
use crate::db::Tx;
use entity::{referral_events, users};

/// Appends to the attribution log: `actor` did `action` (invited / shared / accepted /
/// signed_up) on `resource`, possibly resulting in the signup of `signup`.
pub(crate) async fn record(
    tx: &Tx,
    now: DateTime<Utc>,
    org: Option<OrgId>,
    actor: Option<UserId>,
    action: &str,
    resource: Option<(&str, Uuid)>,
    signup: Option<UserId>,
) -> DomainResult<()> {
    referral_events::ActiveModel {
        id: Set(ReferralEventId::generate()),
        organization_id: Set(org),
        actor_user_id: Set(actor),
        action: Set(action.into()),
        resource_type: Set(resource.map(|(t, _)| t.to_string())),
        resource_id: Set(resource.map(|(_, id)| id)),
        resulted_in_signup_id: Set(signup),
        created_at: Set(now),
    }
    .insert(&**tx)
    .await?;
    Ok(())
}

/// The owner of a referral code (codes are case-insensitive). Unknown → INVALID_INPUT.
pub async fn referrer(db: &impl ConnectionTrait, code: &str) -> DomainResult<users::Model> {
    let code = code.trim().to_lowercase();
    users::Entity::find()
        .filter(users::Column::ReferralCode.eq(code))
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(|| {
            DomainError::invalid(&["referralCode"], "This referral code does not exist.")
        })
}

/// PUBLIC: the owner of a referral link's code, for `/r/{code}` (a public token lookup,
/// rate-limited per client like the others).
pub async fn open(
    svc: &super::Services,
    client: &super::ratelimit::Client,
    code: &str,
) -> DomainResult<users::Model> {
    super::ratelimit::public_lookup(svc, client)?;
    referrer(&svc.db.read, code).await
}

/// The mailbox an address delivers to, for self-referral checks: `ana+2@x.io` is `ana@x.io`.
pub(crate) fn mailbox(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => email.to_string(),
    }
}

/// Refuses crediting a signup to the referrer themselves (same mailbox).
pub fn not_self(referrer: &users::Model, signup_email: &Email) -> DomainResult<()> {
    if mailbox(&referrer.email) == mailbox(signup_email.as_str()) {
        Err(DomainError::SelfReferral)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_addresses_are_the_same_mailbox() {
        assert_eq!(mailbox("ana+promo@x.io"), "ana@x.io");
        assert_eq!(mailbox("ana@x.io"), "ana@x.io");
        assert_ne!(mailbox("ana@x.io"), mailbox("ana@y.io"));
    }
}
