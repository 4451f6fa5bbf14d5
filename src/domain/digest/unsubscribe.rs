//! Leaving the digest without signing in: the link carries a derived token of the user id
//! (no storage; a database leak alone reveals none).
use sea_orm::{sea_query::OnConflict, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::domain::{
    ratelimit::{self, Client},
    tokens::{Keys, Purpose},
    DomainError, DomainResult, Services,
};
use entity::{digest_opt_outs, users};

/// The unsubscribe link of a user's digests.
pub fn unsubscribe_link(svc: &Services, user: uuid::Uuid) -> String {
    format!(
        "{}/digest/unsubscribe/{}",
        svc.config.public_url,
        svc.keys.derive(Purpose::DigestUnsubscribe, user, 0)
    )
}

/// The live user an unsubscribe token is for (a public token lookup: rate limited).
pub async fn verify_unsubscribe(
    svc: &Services,
    client: &Client,
    token: &str,
) -> DomainResult<users::Model> {
    ratelimit::public_lookup(svc, client)?;
    let not_found = || DomainError::NotFound("Unsubscribe link");
    let id = Keys::claimed_id(token).ok_or_else(not_found)?;
    if !svc.keys.verify(Purpose::DigestUnsubscribe, token, id, 0) {
        return Err(not_found());
    }
    users::Entity::find_by_id(id)
        .filter(users::Column::DeletedAt.is_null())
        .one(&svc.db.read)
        .await?
        .ok_or_else(not_found)
}

/// Stops the digest for the token's user (idempotent).
pub async fn unsubscribe(
    svc: &Services,
    client: &Client,
    token: &str,
) -> DomainResult<users::Model> {
    let user = verify_unsubscribe(svc, client, token).await?;
    digest_opt_outs::Entity::insert(digest_opt_outs::ActiveModel {
        user_id: Set(user.id),
        created_at: Set(svc.now()),
    })
    .on_conflict(
        OnConflict::column(digest_opt_outs::Column::UserId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&svc.db.write)
    .await?;
    Ok(user)
}

/// Starts the digest again for the token's user.
pub async fn resubscribe(
    svc: &Services,
    client: &Client,
    token: &str,
) -> DomainResult<users::Model> {
    let user = verify_unsubscribe(svc, client, token).await?;
    digest_opt_outs::Entity::delete_by_id(user.id)
        .exec(&svc.db.write)
        .await?;
    Ok(user)
}

/// Whether the user opted out of the digest.
pub async fn is_opted_out(svc: &Services, user: uuid::Uuid) -> DomainResult<bool> {
    Ok(digest_opt_outs::Entity::find_by_id(user)
        .one(&svc.db.read)
        .await?
        .is_some())
}
