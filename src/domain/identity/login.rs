//! Log-in and sessions: credentials, session tokens, expiry and authentication.
use chrono::Duration;
use entity::ids::SessionId;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    JoinType, QueryFilter, QuerySelect,
};

use super::*;
use crate::db::{unjoin, Joined, Tx};
use crate::domain::{
    ids::UserId,
    orgs,
    ratelimit::{self, Client},
    tokens, DomainError, DomainResult, Services,
};
use entity::{sessions, sessions::SessionKind, users};

/// Checks an email and password without starting a session. Unknown email and wrong
/// password give the same error after the same work; failures count against the log-in
/// limits of the address and of the client (`ratelimit::log_in`), so every door that takes
/// a password (`logIn`, the invitation page's log-in form) shares them.
pub async fn verify_credentials(
    svc: &Services,
    client: &Client,
    email: &str,
    password: &str,
) -> DomainResult<users::Model> {
    let attempt = ratelimit::log_in(svc, client, email).await?;
    let user = match Email::parse(email) {
        Ok(e) => find_by_email(&svc.db.read, &e).await?,
        Err(_) => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let checked = svc.hasher.verify(password.to_string(), stored).await;
    match (checked, user) {
        (Ok(true), Some(u)) => {
            attempt.forgive(svc).await?;
            Ok(u)
        }
        // Not checked at all (no hasher was free): not a failure either.
        (Err(e), _) => {
            attempt.forgive(svc).await?;
            Err(e)
        }
        _ => Err(DomainError::InvalidCredentials),
    }
}

/// Logs in: checks the credentials and starts a session.
pub async fn log_in(
    svc: &Services,
    client: &Client,
    email: &str,
    password: &str,
) -> DomainResult<SignedIn> {
    let user = verify_credentials(svc, client, email, password).await?;
    let token = create_session(&svc.db.write, svc, user.id, client).await?;
    let organization = match user.active_organization_id {
        Some(org) => orgs::find_with_role(&svc.db.read, org, user.id).await?,
        None => None,
    };
    Ok(SignedIn {
        token,
        user,
        organization,
        notice: None,
    })
}

/// Ends the session of `token` (and the live streams it opened, on every instance).
/// Returns whether a session was ended.
pub async fn log_out(svc: &Services, token: &str) -> DomainResult<bool> {
    let mut tx = Tx::begin(&svc.db).await?;
    let Some(session) = sessions::Entity::find()
        .filter(sessions::Column::TokenHash.eq(tokens::session_token_hash(token)))
        .one(&*tx)
        .await?
    else {
        return Ok(false);
    };
    sessions::Entity::delete_by_id(session.id)
        .exec(&*tx)
        .await?;
    tx.revoke(crate::db::bus::Revocation::User(session.user_id));
    tx.commit(&svc.bus).await?;
    Ok(true)
}

/// When the API session of `token` expires, if it is still valid: live streams check it
/// again then (a sliding expiry may have moved it on). Unlike [`authenticate`] it does not
/// extend the session.
pub async fn session_expiry(
    svc: &Services,
    token: &str,
) -> DomainResult<chrono::DateTime<chrono::Utc>> {
    const INVALID: &str = "Your session is not valid. Sign in again.";
    let session = sessions::Entity::find()
        .filter(sessions::Column::TokenHash.eq(tokens::session_token_hash(token.trim())))
        .filter(sessions::Column::Kind.eq(SessionKind::Api))
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::Unauthenticated(INVALID))?;
    if session.expires_at <= svc.now() {
        return Err(DomainError::Unauthenticated(
            "Your session has expired. Sign in again.",
        ));
    }
    Ok(session.expires_at)
}

/// Resolves a bearer token to its user, sliding the session's expiry forward. Only API
/// sessions count: a page session's cookie never authenticates an API request.
pub async fn authenticate(svc: &Services, token: &str) -> DomainResult<users::Model> {
    authenticate_kind(svc, token, SessionKind::Api).await
}

/// Logs in from the sign-in page: the same credential check and limits as `logIn`, but the
/// session is a page session (a cookie), which the API never accepts.
pub async fn log_in_page(
    svc: &Services,
    client: &Client,
    email: &str,
    password: &str,
) -> DomainResult<(String, users::Model)> {
    let user = verify_credentials(svc, client, email, password).await?;
    let token = start_page_session(svc, &user, client).await?;
    Ok((token, user))
}

/// Starts a page session for a user whose credentials were just checked.
pub async fn start_page_session(
    svc: &Services,
    user: &users::Model,
    client: &Client,
) -> DomainResult<String> {
    create_session_of(&svc.db.write, svc, user.id, client, SessionKind::Page).await
}

/// Resolves a page session cookie to its user (sliding its expiry like an API session).
pub async fn authenticate_page(svc: &Services, token: &str) -> DomainResult<users::Model> {
    authenticate_kind(svc, token, SessionKind::Page).await
}

pub(super) async fn authenticate_kind(
    svc: &Services,
    token: &str,
    kind: SessionKind,
) -> DomainResult<users::Model> {
    let now = svc.now();
    let hash = tokens::session_token_hash(token.trim());
    const INVALID: &str = "Your session is not valid. Sign in again.";
    // One statement for both; `Joined` decodes the user strictly, so a stored value this
    // build does not know is an error, not "not signed in".
    let (session, user) = sessions::Entity::find()
        .filter(sessions::Column::TokenHash.eq(hash))
        .filter(sessions::Column::Kind.eq(kind))
        .join(
            JoinType::InnerJoin,
            sessions::Entity::belongs_to(users::Entity)
                .from(sessions::Column::UserId)
                .to(users::Column::Id)
                .into(),
        )
        .filter(users::Column::DeletedAt.is_null())
        .select_also(users::Entity)
        .into_model::<sessions::Model, Joined<users::Model>>()
        .one(&svc.db.read)
        .await?
        .map(unjoin)
        .ok_or(DomainError::Unauthenticated(INVALID))?;
    let user = user.ok_or(DomainError::Unauthenticated(INVALID))?;
    if session.expires_at <= now {
        return Err(DomainError::Unauthenticated(
            "Your session has expired. Sign in again.",
        ));
    }
    // Sliding expiry, written at most once a minute per session to keep reads cheap.
    if now - session.last_used_at > Duration::seconds(60) {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
            .col_expr(
                sessions::Column::ExpiresAt,
                Expr::value(now + Duration::days(svc.config.session_ttl_days)),
            )
            .filter(sessions::Column::Id.eq(session.id))
            .exec(&svc.db.write)
            .await?;
    }
    Ok(user)
}

pub(crate) async fn create_session(
    db: &impl ConnectionTrait,
    svc: &Services,
    user_id: UserId,
    client: &Client,
) -> DomainResult<String> {
    create_session_of(db, svc, user_id, client, SessionKind::Api).await
}

pub(super) async fn create_session_of(
    db: &impl ConnectionTrait,
    svc: &Services,
    user_id: UserId,
    client: &Client,
    kind: SessionKind,
) -> DomainResult<String> {
    let now = svc.now();
    let (token, hash) = match kind {
        SessionKind::Api => tokens::new_session_token(),
        SessionKind::Page => tokens::new_page_session_token(),
    };
    sessions::ActiveModel {
        id: Set(SessionId::generate()),
        user_id: Set(user_id),
        token_hash: Set(hash),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(now + Duration::days(svc.config.session_ttl_days)),
        user_agent: Set(client.user_agent.clone()),
        ip: Set((client != &Client::internal()).then(|| client.ip.to_string())),
        kind: Set(kind),
    }
    .insert(db)
    .await?;
    Ok(token)
}
