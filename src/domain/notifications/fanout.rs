//! Who is told what. Each cause writes one row per recipient in its own transaction, never
//! to whoever caused it, and only to people who are members of the organization it happened
//! in when it happened (a guest has no account to tell; a former member hears nothing new).
use entity::ids::UserId;
use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{parse_mentions, Kind};
use crate::db::Tx;
use crate::domain::{
    ids::OrgId,
    orgs::{self, Role},
    projects, DomainResult,
};
use crate::outbox::notifications::{self as out, Notification};
use entity::{comments, memberships, notification_preferences as prefs, organizations, users};

/// Of `candidates`, the members of `org`.
async fn members(
    db: &impl ConnectionTrait,
    org: OrgId,
    candidates: &BTreeSet<UserId>,
) -> DomainResult<BTreeSet<UserId>> {
    if candidates.is_empty() {
        return Ok(BTreeSet::new());
    }
    Ok(orgs::members_in_org(org)
        .filter(memberships::Column::UserId.is_in(candidates.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect())
}

/// Of `users`, those who turned `kind` off.
async fn turned_off(
    db: &impl ConnectionTrait,
    users: &BTreeSet<UserId>,
    kind: Kind,
) -> DomainResult<HashSet<UserId>> {
    if users.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = prefs::Entity::find()
        .filter(prefs::Column::UserId.is_in(users.iter().copied()))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|p| {
            let user = p.user_id;
            (!super::Preferences::from(p).wants(kind)).then_some(user)
        })
        .collect())
}

/// Writes `template` (its kind, to each recipient) to those of `recipients` who want it.
async fn write(
    tx: &mut Tx,
    now: DateTime<Utc>,
    recipients: BTreeSet<UserId>,
    template: Notification,
) -> DomainResult<()> {
    let off = turned_off(&**tx, &recipients, template.kind).await?;
    let rows = recipients
        .into_iter()
        .filter(|u| !off.contains(u))
        .map(|u| Notification {
            user: u,
            ..template.clone()
        })
        .collect();
    out::write(tx, now, rows).await?;
    Ok(())
}

/// A comment was written on `p` (by a user, or by a guest when `author` is None): its
/// project's creator and earlier commenters are told, and the members it mentions are told
/// they were mentioned instead.
pub(crate) async fn on_comment(
    tx: &mut Tx,
    now: DateTime<Utc>,
    p: &entity::projects::Model,
    c: &comments::Model,
    author: Option<&users::Model>,
    actor_name: &str,
) -> DomainResult<()> {
    let org = p.organization_id;
    let actor = author.map(|u| u.id);
    let commenters: Vec<Option<entity::ids::UserId>> = projects::comments_of(org, p.id)
        .filter(comments::Column::AuthorUserId.is_not_null())
        .select_only()
        .column(comments::Column::AuthorUserId)
        .distinct()
        .into_tuple()
        .all(&**tx)
        .await?;
    let mut involved: BTreeSet<UserId> = commenters.into_iter().flatten().collect();
    involved.extend(p.created_by_user_id);
    let mentioned: BTreeSet<UserId> = parse_mentions(&c.body).into_iter().collect();
    let mut everyone: BTreeSet<UserId> = involved.union(&mentioned).copied().collect();
    if let Some(a) = actor {
        everyone.remove(&a);
    }
    let members = members(&**tx, org, &everyone).await?;
    let template = Notification {
        user: UserId(Uuid::nil()),
        org: Some(org),
        kind: Kind::Comment,
        actor_user: actor,
        actor_name: actor_name.to_string(),
        project: Some(p.id),
        comment: Some(c.id),
        summary: String::new(),
    };
    let (mentions, others): (BTreeSet<UserId>, BTreeSet<UserId>) =
        members.into_iter().partition(|u| mentioned.contains(u));
    // Mentioned and involved: one row, the mention.
    write(
        tx,
        now,
        mentions,
        Notification {
            kind: Kind::Mention,
            summary: format!("{actor_name} mentioned you in a comment on {}", p.name),
            ..template.clone()
        },
    )
    .await?;
    write(
        tx,
        now,
        others,
        Notification {
            summary: format!("{actor_name} commented on {}", p.name),
            ..template
        },
    )
    .await
}

/// `user` accepted an invitation of `inviter` to `org`: the inviter is told, while a member.
pub(crate) async fn on_invitation_accepted(
    tx: &mut Tx,
    now: DateTime<Utc>,
    org: &organizations::Model,
    inviter: UserId,
    user: &users::Model,
) -> DomainResult<()> {
    if inviter == user.id {
        return Ok(());
    }
    let to = members(&**tx, org.id, &BTreeSet::from([inviter])).await?;
    write(
        tx,
        now,
        to,
        Notification {
            user: UserId(Uuid::nil()),
            org: Some(org.id),
            kind: Kind::InvitationAccepted,
            actor_user: Some(user.id),
            actor_name: user.name.clone(),
            project: None,
            comment: None,
            summary: format!("{} accepted your invitation to {}", user.name, org.name),
        },
    )
    .await
}

/// `user` signed up through `referrer`'s shared link of `org` (told while a member of it) or,
/// with `org` None, through their referral code (a matter of the referrer alone).
pub(crate) async fn on_signup(
    tx: &mut Tx,
    now: DateTime<Utc>,
    referrer: UserId,
    org: Option<OrgId>,
    user: &users::Model,
    through: &str,
) -> DomainResult<()> {
    if referrer == user.id {
        return Ok(());
    }
    let to = match org {
        Some(o) => members(&**tx, o, &BTreeSet::from([referrer])).await?,
        None => users::Entity::find_by_id(referrer)
            .filter(users::Column::DeletedAt.is_null())
            .one(&**tx)
            .await?
            .map(|u| u.id)
            .into_iter()
            .collect(),
    };
    write(
        tx,
        now,
        to,
        Notification {
            user: UserId(Uuid::nil()),
            org,
            kind: Kind::Signup,
            actor_user: Some(user.id),
            actor_name: user.name.clone(),
            project: None,
            comment: None,
            summary: format!("{} signed up through your {through}", user.name),
        },
    )
    .await
}

/// `org` reached a plan limit: its ADMINs and OWNERs are told.
pub(crate) async fn on_limit_reached(
    tx: &mut Tx,
    now: DateTime<Utc>,
    org: &organizations::Model,
    summary: &str,
) -> DomainResult<()> {
    let to: BTreeSet<UserId> = orgs::members_in_org(org.id)
        .filter(memberships::Column::Role.is_in([Role::Owner, Role::Admin]))
        .all(&**tx)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    write(
        tx,
        now,
        to,
        Notification {
            user: UserId(Uuid::nil()),
            org: Some(org.id),
            kind: Kind::LimitReached,
            actor_user: None,
            actor_name: "kfactor".into(),
            project: None,
            comment: None,
            summary: summary.to_string(),
        },
    )
    .await
}
