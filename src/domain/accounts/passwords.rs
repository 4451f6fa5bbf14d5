//! Passwords: reset by email link, change with the current one.
use sea_orm::{sea_query::Expr, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{claim, find, issue, live_user};
use crate::{
    db::Tx,
    domain::{
        identity::{self, Email, Password, SignedIn},
        orgs,
        ratelimit::{self, Client},
        tokens, DomainError, DomainResult, Services,
    },
};
use entity::{email_tokens, email_tokens::Purpose, sessions, users};

/// PUBLIC: asks for a password-reset link. The answer is the same whether or not the
/// address has an account, after the same work: the link's row and its email row are
/// written either way, and the mailer simply has nothing to send for an unknown address.
pub async fn request_reset(svc: &Services, client: &Client, email: &str) -> DomainResult<()> {
    let email = Email::parse(email)?;
    ratelimit::reset_email(svc, client, email.as_str()).await?;
    let user = identity::find_by_email(&svc.db.read, &email).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    issue(
        &mut tx,
        svc.now(),
        Purpose::ResetPassword,
        user.map(|u| u.id),
        email.as_str(),
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(())
}

/// Every reset link of the user that is still open stops working (a password was set).
async fn close_reset_links(
    tx: &Tx,
    now: chrono::DateTime<chrono::Utc>,
    user: &users::Model,
) -> DomainResult<()> {
    email_tokens::Entity::update_many()
        .col_expr(email_tokens::Column::UsedAt, Expr::value(now))
        .filter(email_tokens::Column::UserId.eq(user.id))
        .filter(email_tokens::Column::Purpose.eq(Purpose::ResetPassword))
        .filter(email_tokens::Column::UsedAt.is_null())
        .exec(&**tx)
        .await?;
    Ok(())
}

/// PUBLIC: sets a new password with a reset link (single-use, valid one hour). Every
/// session of the account ends; the caller gets a new one. The link arrived by email, so
/// it verifies the address too.
pub async fn reset_password(
    svc: &Services,
    client: &Client,
    token: &str,
    new_password: &str,
) -> DomainResult<SignedIn> {
    ratelimit::public_lookup(svc, client)?;
    let password = Password::parse(new_password).map_err(|e| rename(e, "newPassword"))?;
    // A bad link is refused before the expensive hash.
    find(svc, &svc.db.read, token, &[Purpose::ResetPassword]).await?;
    let hash = svc.hasher.hash(password.0).await?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let row = find(svc, &*tx, token, &[Purpose::ResetPassword]).await?;
    let user = live_user(&*tx, row.user_id).await?;
    if user.email != row.email {
        return Err(DomainError::NotFound("Link"));
    }
    claim(&tx, now, &row).await?;
    close_reset_links(&tx, now, &user).await?;
    let mut am: users::ActiveModel = user.clone().into();
    am.password_hash = Set(hash);
    if user.email_verified_at.is_none() {
        am.email_verified_at = Set(Some(now));
    }
    let user = sea_orm::ActiveModelTrait::update(am, &*tx).await?;
    sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user.id))
        .exec(&*tx)
        .await?;
    tx.revoke(crate::db::bus::Revocation::User(user.id));
    let token = identity::create_session(&*tx, svc, user.id, client).await?;
    let organization = match user.active_organization_id {
        Some(org) => orgs::find_with_role(&*tx, org, user.id).await?,
        None => None,
    };
    tx.commit(&svc.bus).await?;
    tracing::info!(user_id = %user.id, "password reset; every session ended");
    Ok(SignedIn {
        token,
        user,
        organization,
        notice: None,
    })
}

/// Changes the signed-in user's password; the current one is required (it counts against
/// the log-in limits like any password check). Every other session ends; `session_token`
/// (the caller's) stays.
pub async fn change_password(
    svc: &Services,
    client: &Client,
    user: &users::Model,
    session_token: &str,
    current: &str,
    new_password: &str,
) -> DomainResult<users::Model> {
    let password = Password::parse(new_password).map_err(|e| rename(e, "newPassword"))?;
    identity::verify_credentials(svc, client, &user.email, current).await?;
    let hash = svc.hasher.hash(password.0).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    let user = live_user(&*tx, Some(user.id)).await?;
    close_reset_links(&tx, svc.now(), &user).await?;
    let mut am: users::ActiveModel = user.into();
    am.password_hash = Set(hash);
    let user = sea_orm::ActiveModelTrait::update(am, &*tx).await?;
    sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user.id))
        .filter(sessions::Column::TokenHash.ne(tokens::session_token_hash(session_token)))
        .exec(&*tx)
        .await?;
    tx.revoke(crate::db::bus::Revocation::User(user.id));
    tx.commit(&svc.bus).await?;
    tracing::info!(user_id = %user.id, "password changed; other sessions ended");
    Ok(user)
}

/// A password error of [`Password::parse`] reported at another input field.
fn rename(e: DomainError, field: &str) -> DomainError {
    match e {
        DomainError::InvalidInput { message, .. } => DomainError::invalid(&[field], message),
        other => other,
    }
}
