//! Sessions: what a user is signed in on, ending one, ending all.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder};

use crate::domain::{
    ids::{SessionId, UserId},
    tokens, DomainError, DomainResult, Services,
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
    let res = sessions::Entity::delete_many()
        .filter(sessions::Column::Id.eq(id.0))
        .filter(sessions::Column::UserId.eq(user.0))
        .exec(&svc.db.write)
        .await?;
    if res.rows_affected == 0 {
        return Err(DomainError::NotFound("Session"));
    }
    Ok(id)
}

/// Ends every session of the user, the caller's included. Returns how many ended.
pub async fn log_out_all(db: &impl ConnectionTrait, user: UserId) -> DomainResult<u64> {
    let res = sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
