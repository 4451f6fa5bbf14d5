//! Sessions: what a user is signed in on, ending one, ending all.
use sea_orm::{ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder};

use crate::{
    db::{bus::Revocation, Tx},
    domain::{
        ids::{SessionId, UserId},
        tokens, DomainError, DomainResult, Services,
    },
};
use entity::sessions;

/// The user's sessions that have not expired, most recently used first.
pub async fn list(svc: &Services, user: UserId) -> DomainResult<Vec<sessions::Model>> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user.0))
        .filter(sessions::Column::ExpiresAt.gt(svc.now()))
        .order_by(sessions::Column::LastUsedAt, Order::Desc)
        .order_by(sessions::Column::Id, Order::Desc)
        .all(&svc.db.read)
        .await?)
}

/// Whether `session` is the one `token` opened.
pub fn is_token_of(session: &sessions::Model, token: &str) -> bool {
    session.token_hash == tokens::session_token_hash(token.trim())
}

/// Ends one of the user's sessions (its token stops working at once). Another user's
/// session is NOT_FOUND.
pub async fn revoke(svc: &Services, user: UserId, id: SessionId) -> DomainResult<SessionId> {
    let mut tx = Tx::begin(&svc.db).await?;
    let res = sessions::Entity::delete_many()
        .filter(sessions::Column::Id.eq(id.0))
        .filter(sessions::Column::UserId.eq(user.0))
        .exec(&*tx)
        .await?;
    if res.rows_affected == 0 {
        return Err(DomainError::NotFound("Session"));
    }
    tx.revoke(Revocation::User(user));
    tx.commit(&svc.bus).await?;
    Ok(id)
}

/// Ends every session of the user, the caller's included (and their live streams, on every
/// instance). Returns how many ended.
pub async fn log_out_all(svc: &Services, user: UserId) -> DomainResult<u64> {
    let mut tx = Tx::begin(&svc.db).await?;
    let res = sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user.0))
        .exec(&*tx)
        .await?;
    tx.revoke(Revocation::User(user));
    tx.commit(&svc.bus).await?;
    Ok(res.rows_affected)
}
