//! Leaving the digest without signing in: the link carries a derived token of the user id
//! (no storage; a database leak alone reveals none).
use entity::ids::UserId;
use sea_orm::{sea_query::OnConflict, ActiveValue::Set, EntityTrait};

use crate::domain::{
    ratelimit::Client,
    tokens::{self, Purpose},
    DomainResult, Services,
};
use entity::{digest_opt_outs, users};

/// The unsubscribe link of a user's digests.
pub fn unsubscribe_link(svc: &Services, user: UserId) -> String {
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
    tokens::user_of_email_link(svc, client, Purpose::DigestUnsubscribe, token).await
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
pub async fn is_opted_out(svc: &Services, user: UserId) -> DomainResult<bool> {
    Ok(digest_opt_outs::Entity::find_by_id(user)
        .one(&svc.db.read)
        .await?
        .is_some())
}
