//! What confirming a verification link takes and what it does.
//!
//! A link proves a mailbox, not who made the account: a member who invites `cfo@acme.io`
//! can copy the invitation's URL and sign up as the CFO, and the verification email then
//! reaches the real CFO (or her mail scanner, which opens every link). So opening a link
//! changes nothing (the page shows what confirming would do, behind a button), and
//! confirming needs the account's holder as well as the mailbox's: the account's own
//! session, or its password. The real CFO knows neither, so the impersonation ends there;
//! she can still take the address for herself with a password reset, which ends every
//! session.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::{find, live_user};
use crate::domain::{invitations, ratelimit, ratelimit::Client, DomainResult, Services};
use entity::{email_tokens::Purpose, enums::AcquisitionSource, memberships, organizations, users};

/// How whoever uses a verification link shows they hold the account too.
#[derive(Clone, Copy, Debug)]
pub enum Holder<'a> {
    /// Signed in as some user, with this bearer token (it counts only when that user is
    /// the link's account).
    Session {
        /// The signed-in user.
        user: &'a users::Model,
        /// Their session token.
        token: &'a str,
    },
    /// The account's password (a wrong one counts against the log-in limits).
    Password(&'a str),
    /// Only the link.
    Nothing,
}

/// The invitation a signup through a copied link is waiting to join, with what the
/// verification email and page say about it.
#[derive(Clone, Debug)]
pub struct WaitingJoin {
    /// The pending invitation.
    pub invitation: entity::invitations::Model,
    /// The organization it joins.
    pub organization: organizations::Model,
    /// Who sent it (display name).
    pub inviter: String,
}

/// The pending invitation that verifying `user`'s address would make them join: they
/// signed up through a copied invitation link (attribution INVITE, no organization yet)
/// and the invitation still works and is still for their address.
pub async fn waiting_join(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user: &users::Model,
) -> DomainResult<Option<WaitingJoin>> {
    if user.acquisition_source != AcquisitionSource::Invite {
        return Ok(None);
    }
    let Some(id) = user.invite_token_id else {
        return Ok(None);
    };
    let has_org = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user.id))
        .count(db)
        .await?
        > 0;
    if has_org {
        return Ok(None);
    }
    let Some(invitation) = entity::invitations::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|inv| invitations::usable(inv, now).is_ok() && inv.email == user.email)
    else {
        return Ok(None);
    };
    let Some(organization) = organizations::Entity::find_by_id(invitation.organization_id)
        .filter(organizations::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let inviter = users::Entity::find_by_id(invitation.invited_by_user_id)
        .one(db)
        .await?
        .map(|u| crate::domain::identity::clean_name(&u.name))
        .unwrap_or_else(|| "a member".into());
    Ok(Some(WaitingJoin {
        invitation,
        organization,
        inviter,
    }))
}

/// What a verification link would do, for the page behind it (nothing is used yet).
#[derive(Clone, Debug)]
pub struct Preview {
    /// Which link: verifying the account's address, or changing to a new one.
    pub purpose: Purpose,
    /// The address the link confirms.
    pub email: String,
    /// The account's current address.
    pub account_email: String,
    /// The organization confirming joins, if any.
    pub joins: Option<WaitingJoin>,
}

/// PUBLIC: reads a verification link without using it (rate-limited like every public
/// token lookup). NOT_FOUND, TOKEN_EXPIRED, TOKEN_ALREADY_USED as `verifyEmail` would say.
pub async fn preview(svc: &Services, client: &Client, token: &str) -> DomainResult<Preview> {
    ratelimit::public_lookup(svc, client)?;
    let db = &svc.db.read;
    let row = find(
        svc,
        db,
        token,
        &[Purpose::VerifyEmail, Purpose::ChangeEmail],
    )
    .await?;
    let user = live_user(db, row.user_id).await?;
    let joins = match row.purpose {
        Purpose::VerifyEmail => waiting_join(db, svc.now(), &user).await?,
        _ => None,
    };
    Ok(Preview {
        purpose: row.purpose,
        email: row.email,
        account_email: user.email,
        joins,
    })
}
