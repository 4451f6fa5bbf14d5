//! Notifications: what happened to a user (a comment on a project they created or commented
//! on, a mention, an accepted invitation, a signup through their link or referral code, a
//! limit their organization reached), one row per recipient, written through the outbox in
//! the transaction of its cause ([`fanout`]); read, counted and marked read by their
//! recipient only; batched into at most one email per interval ([`email`]).
pub mod email;
pub(crate) mod fanout;

use chrono::Utc;
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};

use super::{
    ids::{NotificationId, OrgId, UserId},
    page::{self, Page, PageRequest},
    DomainError, DomainResult, Services,
};
use entity::{notification_preferences as prefs, notifications};

pub use entity::enums::NotificationKind as Kind;

/// A stored notification.
pub type Notification = notifications::Model;

/// Most ids `markNotificationsRead` takes at once.
pub const MAX_MARK_IDS: usize = 100;

/// The user ids of `@[usr_…]` mentions in a comment body, in order, once each. Mentions are
/// the markup a frontend inserts from a member picker; names are never parsed.
pub fn parse_mentions(body: &str) -> Vec<UserId> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("@[") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(']') else { break };
        if let Ok(id) = UserId::parse(&rest[..end]) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        rest = &rest[end + 1..];
    }
    out
}

/// The notifications of one user (never anyone else's).
fn of(user: UserId) -> Select<notifications::Entity> {
    notifications::Entity::find().filter(notifications::Column::UserId.eq(user.0))
}

/// One page of the user's notifications, newest first (unread ones only if asked).
pub async fn list(
    db: &impl ConnectionTrait,
    user: UserId,
    unread_only: bool,
    req: PageRequest,
) -> DomainResult<Page<Notification>> {
    let mut q = of(user);
    if unread_only {
        q = q.filter(notifications::Column::ReadAt.is_null());
    }
    page::fetch(db, q, notifications::Column::Id, Order::Desc, req).await
}

/// How many of the user's notifications are unread.
pub async fn unread_count(db: &impl ConnectionTrait, user: UserId) -> DomainResult<u64> {
    Ok(of(user)
        .filter(notifications::Column::ReadAt.is_null())
        .count(db)
        .await?)
}

/// Marks read the user's notifications named in `ids`, and with `up_to` every one up to and
/// including it (ids are time-ordered, so "up to" is "at or before it"). Ids of other users'
/// notifications match nothing. Returns how many turned read.
pub async fn mark_read(
    svc: &Services,
    user: UserId,
    ids: &[String],
    up_to: Option<&str>,
) -> DomainResult<u64> {
    if ids.len() > MAX_MARK_IDS {
        return Err(DomainError::invalid(
            &["ids"],
            format!("Mark at most {MAX_MARK_IDS} notifications by id at once; use upTo for more."),
        ));
    }
    if ids.is_empty() && up_to.is_none() {
        return Err(DomainError::invalid(
            &["ids"],
            "Name the notifications to mark read (ids), or upTo.",
        ));
    }
    let mut which = Condition::any();
    let mut parsed = Vec::with_capacity(ids.len());
    for (i, raw) in ids.iter().enumerate() {
        let id = NotificationId::parse(raw).map_err(|_| {
            DomainError::invalid(&["ids", &i.to_string()], "Not a notification id.")
        })?;
        parsed.push(id.0);
    }
    if !parsed.is_empty() {
        which = which.add(notifications::Column::Id.is_in(parsed));
    }
    if let Some(raw) = up_to {
        let id = NotificationId::parse(raw)
            .map_err(|_| DomainError::invalid(&["upTo"], "Not a notification id."))?;
        which = which.add(notifications::Column::Id.lte(id.0));
    }
    let r = notifications::Entity::update_many()
        .col_expr(notifications::Column::ReadAt, Expr::value(svc.now()))
        .filter(notifications::Column::UserId.eq(user.0))
        .filter(notifications::Column::ReadAt.is_null())
        .filter(which)
        .exec(&svc.db.write)
        .await?;
    Ok(r.rows_affected)
}

/// The user's notifications after `after` (all of them when None), oldest first, at most
/// 100; only those of `org` when given. What a live stream delivers next.
pub async fn after(
    db: &impl ConnectionTrait,
    user: UserId,
    org: Option<OrgId>,
    after: Option<NotificationId>,
) -> DomainResult<Vec<Notification>> {
    let mut q = of(user);
    if let Some(a) = after {
        q = q.filter(notifications::Column::Id.gt(a.0));
    }
    if let Some(o) = org {
        q = q.filter(notifications::Column::OrganizationId.eq(o.0));
    }
    Ok(q.order_by_asc(notifications::Column::Id)
        .limit(100)
        .all(db)
        .await?)
}

/// The id of the user's newest notification.
pub async fn latest(
    db: &impl ConnectionTrait,
    user: UserId,
) -> DomainResult<Option<NotificationId>> {
    Ok(of(user)
        .select_only()
        .column(notifications::Column::Id)
        .order_by_desc(notifications::Column::Id)
        .into_tuple::<NotificationId>()
        .one(db)
        .await?)
}

/// What a user wants to be told, and whether by email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preferences {
    /// Comments on projects they created or commented on.
    pub comments: bool,
    /// Mentions in comments.
    pub mentions: bool,
    /// Their invitations accepted.
    pub invitation_accepted: bool,
    /// Signups through their links or referral code.
    pub signups: bool,
    /// Their organization reached a limit (ADMINs and OWNERs).
    pub limit_reached: bool,
    /// Batched notification email.
    pub email: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            comments: true,
            mentions: true,
            invitation_accepted: true,
            signups: true,
            limit_reached: true,
            email: true,
        }
    }
}

impl From<prefs::Model> for Preferences {
    fn from(p: prefs::Model) -> Self {
        Preferences {
            comments: p.comments,
            mentions: p.mentions,
            invitation_accepted: p.invitation_accepted,
            signups: p.signups,
            limit_reached: p.limit_reached,
            email: p.email,
        }
    }
}

impl Preferences {
    /// Whether notifications of `kind` are on.
    pub fn wants(&self, kind: Kind) -> bool {
        match kind {
            Kind::Comment => self.comments,
            Kind::Mention => self.mentions,
            Kind::InvitationAccepted => self.invitation_accepted,
            Kind::Signup => self.signups,
            Kind::LimitReached => self.limit_reached,
        }
    }
}

/// A change of preferences: None keeps a setting as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct PreferencesChange {
    /// See [`Preferences::comments`].
    pub comments: Option<bool>,
    /// See [`Preferences::mentions`].
    pub mentions: Option<bool>,
    /// See [`Preferences::invitation_accepted`].
    pub invitation_accepted: Option<bool>,
    /// See [`Preferences::signups`].
    pub signups: Option<bool>,
    /// See [`Preferences::limit_reached`].
    pub limit_reached: Option<bool>,
    /// See [`Preferences::email`].
    pub email: Option<bool>,
}

/// The user's preferences (the defaults when never changed).
pub async fn preferences(db: &impl ConnectionTrait, user: UserId) -> DomainResult<Preferences> {
    Ok(prefs::Entity::find_by_id(user.0)
        .one(db)
        .await?
        .map(Preferences::from)
        .unwrap_or_default())
}

/// Applies a change of the user's preferences and returns them.
pub async fn update_preferences(
    svc: &Services,
    user: UserId,
    change: PreferencesChange,
) -> DomainResult<Preferences> {
    let cur = preferences(&svc.db.write, user).await?;
    let p = Preferences {
        comments: change.comments.unwrap_or(cur.comments),
        mentions: change.mentions.unwrap_or(cur.mentions),
        invitation_accepted: change
            .invitation_accepted
            .unwrap_or(cur.invitation_accepted),
        signups: change.signups.unwrap_or(cur.signups),
        limit_reached: change.limit_reached.unwrap_or(cur.limit_reached),
        email: change.email.unwrap_or(cur.email),
    };
    store(&svc.db.write, user, p, svc.now()).await?;
    Ok(p)
}

/// Writes a user's preferences (insert or replace).
async fn store(
    db: &impl ConnectionTrait,
    user: UserId,
    p: Preferences,
    now: chrono::DateTime<Utc>,
) -> DomainResult<()> {
    prefs::Entity::insert(prefs::ActiveModel {
        user_id: Set(user),
        comments: Set(p.comments),
        mentions: Set(p.mentions),
        invitation_accepted: Set(p.invitation_accepted),
        signups: Set(p.signups),
        limit_reached: Set(p.limit_reached),
        email: Set(p.email),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(prefs::Column::UserId)
            .update_columns([
                prefs::Column::Comments,
                prefs::Column::Mentions,
                prefs::Column::InvitationAccepted,
                prefs::Column::Signups,
                prefs::Column::LimitReached,
                prefs::Column::Email,
                prefs::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_markup_only_once_each_and_never_names() {
        let a = UserId::generate();
        let b = UserId::generate();
        let body = format!("hi @[{a}] and @[{b}], again @[{a}]; @ana @[usr_nothex] @[{a}");
        assert_eq!(parse_mentions(&body), vec![a, b]);
        assert!(parse_mentions("@Ana @[Ana]").is_empty());
    }
}
