//! Account safety: proving an address, passwords and sessions.
//!
//! Links sent by email are rows of `email_tokens` whose token is derived from the row id
//! (DESIGN.md, derived tokens): nothing in the database is a usable link, the mailer renders
//! the link at send time, and a link is single-use (`used_at`) and expires.
//!
//! **What an unverified account may do.** Everything in its own workspaces (projects,
//! sharing, comments, plans) and invite people, with a smaller hourly send budget
//! (`KFACTOR_UNVERIFIED_INVITATION_SENDS_PER_HOUR`). It may not *join* an organization by
//! proof of an address it has not proven: signing up through a copied invitation link, or
//! accepting an invitation as an existing user with the copied link, answers
//! EMAIL_NOT_VERIFIED and sends a verification email; the emailed invitation link proves
//! the address itself. Accounts created before verification existed start unverified and
//! keep every membership they have.
use chrono::{DateTime, Duration, Utc};
use entity::ids::EmailTokenId;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter,
};

use super::{
    identity::{self, Email},
    ids::UserId,
    invitations,
    metrics::{
        probe::{Probe, Scopes},
        sql::Only,
    },
    orgs::{self, Role},
    ratelimit::{self, Client},
    tokens::{Keys, Purpose as TokenPurpose},
    DomainError, DomainResult, Services,
};
use crate::db::Tx;
use entity::{
    email_tokens, email_tokens::Purpose, enums::AcquisitionSource, memberships, organizations,
    users,
};

pub mod confirm;
pub mod passwords;
pub mod sessions;

/// How long a verification link works.
pub const VERIFY_TTL: Duration = Duration::hours(48);
/// How long a link confirming a new address works.
pub const CHANGE_EMAIL_TTL: Duration = Duration::hours(24);
/// How long a password-reset link works.
pub const RESET_TTL: Duration = Duration::hours(1);

/// The email outbox kind of each link.
pub fn email_kind(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::VerifyEmail => "verify_email",
        Purpose::ResetPassword => "password_reset",
        Purpose::ChangeEmail => "email_change",
    }
}

fn ttl(purpose: Purpose) -> Duration {
    match purpose {
        Purpose::VerifyEmail => VERIFY_TTL,
        Purpose::ResetPassword => RESET_TTL,
        Purpose::ChangeEmail => CHANGE_EMAIL_TTL,
    }
}

/// Issues a link in the caller's transaction and queues its email (sent after commit).
pub(crate) async fn issue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    purpose: Purpose,
    user: Option<UserId>,
    email: &str,
) -> DomainResult<email_tokens::Model> {
    let row = email_tokens::ActiveModel {
        id: Set(EmailTokenId::generate()),
        user_id: Set(user),
        purpose: Set(purpose),
        email: Set(email.to_string()),
        created_at: Set(now),
        expires_at: Set(now + ttl(purpose)),
        used_at: Set(None),
    }
    .insert(&**tx)
    .await?;
    crate::outbox::email::enqueue(tx, now, email_kind(purpose), email, row.id, 1).await?;
    Ok(row)
}

/// The token of a link.
pub fn token(keys: &Keys, row: &email_tokens::Model) -> String {
    keys.derive(TokenPurpose::EmailToken(row.purpose), row.id, 1)
}

/// The URL a link's email carries: the server's own page, which calls the same operation
/// as the GraphQL mutation.
pub fn link(svc: &Services, row: &email_tokens::Model) -> String {
    let page = match row.purpose {
        Purpose::VerifyEmail | Purpose::ChangeEmail => "verify-email",
        Purpose::ResetPassword => "reset-password",
    };
    format!("{}/{page}/{}", svc.config.public_url, token(&svc.keys, row))
}

/// Whether a link can still be used at `now`.
pub fn usable(row: &email_tokens::Model, now: DateTime<Utc>) -> DomainResult<()> {
    if row.used_at.is_some() {
        Err(DomainError::TokenUsed)
    } else if row.expires_at <= now {
        Err(DomainError::TokenExpired)
    } else {
        Ok(())
    }
}

/// The link a token names, if it is one of `purposes`: NOT_FOUND for anything forged,
/// TOKEN_ALREADY_USED / TOKEN_EXPIRED for a real one that no longer works.
async fn find(
    svc: &Services,
    db: &impl ConnectionTrait,
    token: &str,
    purposes: &[Purpose],
) -> DomainResult<email_tokens::Model> {
    const GONE: DomainError = DomainError::NotFound("Link");
    let id = Keys::claimed_id(token).ok_or(GONE)?;
    let row = email_tokens::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(GONE)?;
    if !purposes.contains(&row.purpose)
        || !svc
            .keys
            .verify(TokenPurpose::EmailToken(row.purpose), token, row.id, 1)
    {
        return Err(GONE);
    }
    usable(&row, svc.now())?;
    Ok(row)
}

/// Uses a link once: of two concurrent uses, one wins and the other is TOKEN_ALREADY_USED.
async fn claim(tx: &Tx, now: DateTime<Utc>, row: &email_tokens::Model) -> DomainResult<()> {
    let res = email_tokens::Entity::update_many()
        .col_expr(email_tokens::Column::UsedAt, Expr::value(now))
        .filter(email_tokens::Column::Id.eq(row.id))
        .filter(email_tokens::Column::UsedAt.is_null())
        .exec(&**tx)
        .await?;
    if res.rows_affected == 0 {
        return Err(DomainError::TokenUsed);
    }
    Ok(())
}

/// Marks the user's current address verified (once).
pub(crate) async fn mark_verified(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user: &users::Model,
) -> DomainResult<()> {
    users::Entity::update_many()
        .col_expr(users::Column::EmailVerifiedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::EmailVerifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The refusal for an operation that needs a verified address, after sending a
/// verification email (unless the verification limits say one went out recently).
pub(crate) async fn needs_verification(
    svc: &Services,
    client: &Client,
    user: &users::Model,
) -> DomainResult<DomainError> {
    let sent = match ratelimit::verification_email(svc, client, &user.email).await {
        Ok(()) => {
            let mut tx = Tx::begin(&svc.db).await?;
            issue(
                &mut tx,
                svc.now(),
                Purpose::VerifyEmail,
                Some(user.id),
                &user.email,
            )
            .await?;
            tx.commit(&svc.bus).await?;
            true
        }
        Err(DomainError::RateLimited { .. }) => false,
        Err(e) => return Err(e),
    };
    Ok(DomainError::EmailNotVerified(if sent {
        format!(
            "Verify your email address first: we sent a link to {}. Open it, then try again.",
            user.email
        )
    } else {
        format!(
            "Verify your email address first: open the link we sent to {}, then try again.",
            user.email
        )
    }))
}

/// Sends a new verification link to the signed-in user's address.
pub async fn resend_verification(
    svc: &Services,
    client: &Client,
    user: &users::Model,
) -> DomainResult<()> {
    if user.email_verified_at.is_some() {
        return Err(DomainError::invalid(
            &[],
            "Your email address is already verified.",
        ));
    }
    ratelimit::verification_email(svc, client, &user.email).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    issue(
        &mut tx,
        svc.now(),
        Purpose::VerifyEmail,
        Some(user.id),
        &user.email,
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(())
}

/// A proven address and where it led.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The user, verified (with their new address after an email change).
    pub user: users::Model,
    /// The organization they joined now, when they had signed up through a copied
    /// invitation link and were waiting for this.
    pub joined: Option<(organizations::Model, Role)>,
    /// A new session, when confirming ended the account's earlier ones and the caller
    /// asked for one (see [`verify_email`]).
    pub session: Option<String>,
}

/// PUBLIC: uses a verification link (the account's address, or a new address to change
/// to). Single-use; verifying also completes a signup that waited for it.
///
/// The link proves the mailbox; `holder` must prove the account (its session or its
/// password, see [`confirm`]): without either the answer is INVALID_INPUT on `password`,
/// with a wrong password INVALID_CREDENTIALS, and the link stays unused. When confirming
/// completes a join that waited for it, every session of the account started before ends
/// except the one that proved it (none survives a password proof); `new_session` then
/// starts one for the caller.
pub async fn verify_email(
    svc: &Services,
    client: &Client,
    token: &str,
    holder: confirm::Holder<'_>,
    new_session: bool,
) -> DomainResult<Verified> {
    ratelimit::public_lookup(svc, client)?;
    let found = find(
        svc,
        &svc.db.read,
        token,
        &[Purpose::VerifyEmail, Purpose::ChangeEmail],
    )
    .await?;
    let account = live_user(&svc.db.read, found.user_id).await?;
    let kept_session = match holder {
        confirm::Holder::Session { user, token } if user.id == account.id => {
            Some(crate::domain::tokens::session_token_hash(token.trim()))
        }
        confirm::Holder::Password(p) if !p.is_empty() => {
            identity::verify_credentials(svc, client, &account.email, p).await?;
            None
        }
        _ => {
            return Err(DomainError::invalid(
                &["password"],
                format!(
                    "Enter the password of the account {} to confirm (or open the link where you are signed in to it). If you did not create it, ignore the email.",
                    account.email
                ),
            ))
        }
    };
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let row = find(
        svc,
        &*tx,
        token,
        &[Purpose::VerifyEmail, Purpose::ChangeEmail],
    )
    .await?;
    let user = live_user(&*tx, row.user_id).await?;
    claim(&tx, now, &row).await?;
    let mut joined = None;
    match row.purpose {
        Purpose::ChangeEmail => {
            let email = Email::parse(&row.email)?;
            if identity::find_by_email(&*tx, &email).await?.is_some() {
                return Err(DomainError::EmailTaken);
            }
            let mut am: users::ActiveModel = user.clone().into();
            am.email = Set(email.as_str().to_string());
            am.email_verified_at = Set(Some(now));
            am.update(&*tx)
                .await
                .map_err(|e| identity::unique_violation(e, DomainError::EmailTaken))?;
        }
        _ => {
            // A link to an address the account no longer has proves nothing about it.
            if row.email != user.email {
                return Err(DomainError::NotFound("Link"));
            }
            mark_verified(&*tx, now, &user).await?;
            joined = join_waiting_signup(svc, &mut tx, now, &user).await?;
        }
    }
    let mut session = None;
    if joined.is_some() {
        // Joining hands out access that the account's earlier sessions were refused:
        // none of them comes along, except the one that proved it is the holder's.
        let mut ending = entity::sessions::Entity::delete_many()
            .filter(entity::sessions::Column::UserId.eq(user.id));
        if let Some(hash) = &kept_session {
            ending = ending.filter(entity::sessions::Column::TokenHash.ne(hash.as_str()));
        }
        let ended = ending.exec(&*tx).await?.rows_affected;
        tx.revoke(crate::db::bus::Revocation::User(user.id));
        tracing::info!(user_id = %user.id, ended, "verified join ended earlier sessions");
        if new_session && kept_session.is_none() {
            session = Some(identity::create_session(&*tx, svc, user.id, client).await?);
        }
    }
    let user = live_user(&*tx, Some(user.id)).await?;
    tx.commit(&svc.bus).await?;
    Ok(Verified {
        user,
        joined,
        session,
    })
}

/// Starts changing the signed-in user's address (the password is required): a link goes
/// to the new address, and the change happens when it is confirmed (`verifyEmail`). Until
/// then the account keeps its address.
///
/// The answer does not tell whether the new address has an account (that would make this
/// an oracle for who is a customer): the limits are spent and an email is queued either
/// way; when the address is taken, its owner gets a notice without a link instead
/// (decided when the email is rendered, `crate::mailer`), and nothing changes.
pub async fn change_email(
    svc: &Services,
    client: &Client,
    user: &users::Model,
    new_email: &str,
    password: &str,
) -> DomainResult<()> {
    let email = Email::parse(new_email).map_err(|_| {
        DomainError::invalid(
            &["newEmail"],
            "Enter a valid email address, like ana@example.com.",
        )
    })?;
    if email.as_str() == user.email {
        return Err(DomainError::invalid(
            &["newEmail"],
            "This is already your email address.",
        ));
    }
    identity::verify_credentials(svc, client, &user.email, password).await?;
    ratelimit::verification_email(svc, client, email.as_str()).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    issue(
        &mut tx,
        svc.now(),
        Purpose::ChangeEmail,
        Some(user.id),
        email.as_str(),
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(())
}

/// A user that exists and is not deleted.
pub(crate) async fn live_user(
    db: &impl ConnectionTrait,
    id: Option<UserId>,
) -> DomainResult<users::Model> {
    let Some(id) = id else {
        return Err(DomainError::NotFound("Link"));
    };
    users::Entity::find_by_id(id)
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("Link"))
}

/// A user who signed up through a copied invitation link has no organization yet: now
/// that the address is proven they join it (if the invitation is still pending), or get a
/// workspace of their own (if it no longer is).
async fn join_waiting_signup(
    svc: &Services,
    tx: &mut Tx,
    now: DateTime<Utc>,
    user: &users::Model,
) -> DomainResult<Option<(organizations::Model, Role)>> {
    if user.acquisition_source != AcquisitionSource::Invite {
        return Ok(None);
    }
    let has_org = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user.id))
        .count(&**tx)
        .await?
        > 0;
    if has_org {
        return Ok(None);
    }
    let pending = confirm::waiting_join(&**tx, now, user)
        .await?
        .map(|w| w.invitation);
    // Joining is a growth fact: the membership and, through an invitation, its acceptance.
    let probe = Probe::open(
        tx,
        svc,
        Only {
            users: vec![user.id],
            invitations: pending.iter().map(|i| i.id).collect(),
            ..Only::default()
        },
        &[user.id],
        Scopes::Both,
    )
    .await?;
    let (org, role) = match pending {
        Some(inv) => {
            let m = invitations::accept_in_tx(tx, now, &inv, user, "invitation").await?;
            let org = organizations::Entity::find_by_id(inv.organization_id)
                .one(&**tx)
                .await?
                .ok_or(DomainError::NotFound("Organization"))?;
            (org, m.role)
        }
        None => {
            let name = identity::workspace_name(&user.name)?;
            orgs::create_in_tx(tx, now, user, &name, &svc.plans.default_plan().key).await?
        }
    };
    probe.close(tx, svc).await?;
    identity::set_active_org(&**tx, user.clone(), Some(org.id)).await?;
    tracing::info!(user_id = %user.id, org_id = %org.id, "verified signup joined");
    Ok(Some((org, role)))
}
