//! Organizations and memberships: who belongs where, with which role, and what they may do.
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::IntoCondition, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait,
    EntityTrait, JoinType, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde_json::json;

use super::{
    activity::ActivityType,
    identity::{self, Name},
    ids::{MembershipId, OrgId, UserId},
    metrics,
    page::{self, Page, PageRequest},
    DomainError, DomainResult, Services,
};
use crate::db::{unjoin, Joined, Tx};
use crate::outbox::{self, Actor, Event};
use entity::{memberships, organizations, users};

pub use entity::enums::{InvitePolicy, Role};

/// An organization together with the caller's role in it: proof that the caller may see it.
#[derive(Clone, Debug)]
pub struct OrgAccess {
    /// The organization.
    pub org: organizations::Model,
    /// The caller's role.
    pub role: Role,
}

impl OrgAccess {
    /// Requires at least `min`, else PERMISSION_DENIED with `what` ("rename this organization").
    pub fn require(&self, min: Role, what: &str) -> DomainResult<()> {
        if self.role >= min {
            Ok(())
        } else {
            Err(DomainError::PermissionDenied(format!(
                "Only {} can {what}.",
                match min {
                    Role::Owner => "owners",
                    _ => "admins and owners",
                }
            )))
        }
    }
}

/// Tenant-scoped query: the memberships of one organization.
pub fn members_in_org(org: OrgId) -> Select<memberships::Entity> {
    memberships::Entity::find().filter(memberships::Column::OrganizationId.eq(org.0))
}

/// The caller's access to an organization: NotFound when it does not exist, Forbidden when
/// the caller is not a member.
pub async fn access(
    db: &impl ConnectionTrait,
    user: UserId,
    org: OrgId,
) -> DomainResult<OrgAccess> {
    // One statement: the organization, and the caller's membership joined onto it.
    let callers_membership = memberships::Entity::belongs_to(organizations::Entity)
        .from(memberships::Column::OrganizationId)
        .to(organizations::Column::Id)
        .on_condition(move |_, _| memberships::Column::UserId.eq(user.0).into_condition())
        .into();
    let (o, m) = organizations::Entity::find_by_id(org.0)
        .filter(organizations::Column::DeletedAt.is_null())
        .join_rev(JoinType::LeftJoin, callers_membership)
        .select_also(memberships::Entity)
        .into_model::<organizations::Model, Joined<memberships::Model>>()
        .one(db)
        .await?
        .map(unjoin)
        .ok_or(DomainError::NotFound("Organization"))?;
    let m = m.ok_or(DomainError::Forbidden)?;
    Ok(OrgAccess {
        org: o,
        role: m.role,
    })
}

/// Like [`access`] inside a write transaction, locking the organization row first so that
/// concurrent membership changes of one organization serialize (PostgreSQL `FOR UPDATE`;
/// SQLite serializes all writes anyway).
pub(crate) async fn access_locked(tx: &Tx, user: UserId, org: OrgId) -> DomainResult<OrgAccess> {
    let o = organizations::Entity::find_by_id(org.0)
        .filter(organizations::Column::DeletedAt.is_null())
        .lock_exclusive()
        .one(&**tx)
        .await?
        .ok_or(DomainError::NotFound("Organization"))?;
    let m = membership(&**tx, org, user)
        .await?
        .ok_or(DomainError::Forbidden)?;
    Ok(OrgAccess {
        org: o,
        role: m.role,
    })
}

/// The organization and the user's role there, or None if they are not a member.
pub async fn find_with_role(
    db: &impl ConnectionTrait,
    org: OrgId,
    user: UserId,
) -> DomainResult<Option<(organizations::Model, Role)>> {
    match access(db, user, org).await {
        Ok(a) => Ok(Some((a.org, a.role))),
        Err(DomainError::NotFound(_) | DomainError::Forbidden) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) async fn membership(
    db: &impl ConnectionTrait,
    org: OrgId,
    user: UserId,
) -> DomainResult<Option<memberships::Model>> {
    Ok(members_in_org(org)
        .filter(memberships::Column::UserId.eq(user.0))
        .one(db)
        .await?)
}

/// Creates an organization owned by `owner`, with its MEMBER_JOINED event.
pub(crate) async fn create_in_tx(
    tx: &mut Tx,
    now: DateTime<Utc>,
    owner: &users::Model,
    name: &Name,
    plan_key: &str,
) -> DomainResult<(organizations::Model, Role)> {
    let org = organizations::ActiveModel {
        id: Set(OrgId::generate()),
        name: Set(name.as_str().to_string()),
        invite_policy: Set(InvitePolicy::AnyMember),
        plan_key: Set(plan_key.to_string()),
        billing_anchor: Set(now),
        created_at: Set(now),
        deletion_scheduled_for: Set(None),
        deleted_at: Set(None),
    }
    .insert(&**tx)
    .await?;
    add_member(tx, now, &org, owner, Role::Owner, "created").await?;
    Ok((org, Role::Owner))
}

/// Inserts a membership and its MEMBER_JOINED event.
pub(crate) async fn add_member(
    tx: &mut Tx,
    now: DateTime<Utc>,
    org: &organizations::Model,
    user: &users::Model,
    role: Role,
    via: &str,
) -> DomainResult<memberships::Model> {
    let m = memberships::ActiveModel {
        id: Set(MembershipId::generate()),
        organization_id: Set(org.id),
        user_id: Set(user.id),
        role: Set(role),
        joined_at: Set(now),
    }
    .insert(&**tx)
    .await
    .map_err(|e| identity::unique_violation(e, DomainError::AlreadyMember))?;
    let summary = if via == "created" {
        format!("{} created {}", user.name, org.name)
    } else {
        format!("{} joined {}", user.name, org.name)
    };
    outbox::record(
        tx,
        now,
        Event {
            org: org.id,
            kind: ActivityType::MemberJoined,
            actor: Actor::user(user.id),
            resource: None,
            summary,
            data: json!({ "userId": user.id.to_string(), "role": role.as_api(), "via": via }),
            webhook: None,
        },
    )
    .await?;
    Ok(m)
}

/// Creates an organization; the caller becomes its OWNER.
pub async fn create(svc: &Services, user: &users::Model, name: &str) -> DomainResult<OrgAccess> {
    let name = Name::parse(name, "name")?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    // The creator's membership starts now: the new organization's cohort and signups count
    // them from today.
    let probe = metrics::probe::Probe::open(
        &tx,
        svc,
        metrics::sql::Only {
            members: vec![user.id],
            ..Default::default()
        },
        &[user.id],
        metrics::probe::Scopes::Orgs,
    )
    .await?;
    let (org, role) =
        create_in_tx(&mut tx, now, user, &name, &svc.plans.default_plan().key).await?;
    probe.close(&mut tx, svc).await?;
    tx.commit(&svc.bus).await?;
    Ok(OrgAccess { org, role })
}

/// Renames an organization (ADMIN or OWNER).
pub async fn rename(
    svc: &Services,
    user: UserId,
    org: OrgId,
    name: &str,
) -> DomainResult<OrgAccess> {
    let name = Name::parse(name, "name")?;
    let tx = Tx::begin(&svc.db).await?;
    let a = access_locked(&tx, user, org).await?;
    a.require(Role::Admin, "rename this organization")?;
    let mut am: organizations::ActiveModel = a.org.into();
    am.name = Set(name.as_str().to_string());
    let org = am.update(&*tx).await?;
    tx.commit(&svc.bus).await?;
    Ok(OrgAccess { org, role: a.role })
}

/// Sets who may invite (ADMIN or OWNER).
pub async fn set_invite_policy(
    svc: &Services,
    user: UserId,
    org: OrgId,
    policy: InvitePolicy,
) -> DomainResult<OrgAccess> {
    let tx = Tx::begin(&svc.db).await?;
    let a = access_locked(&tx, user, org).await?;
    a.require(Role::Admin, "change who may invite")?;
    let mut am: organizations::ActiveModel = a.org.into();
    am.invite_policy = Set(policy);
    let org = am.update(&*tx).await?;
    tx.commit(&svc.bus).await?;
    Ok(OrgAccess { org, role: a.role })
}

/// Makes `org` the caller's active organization (they must be a member).
pub async fn set_active(
    svc: &Services,
    user: &users::Model,
    org: OrgId,
) -> DomainResult<OrgAccess> {
    let a = access(&svc.db.read, user.id, org).await?;
    identity::set_active_org(&svc.db.write, user.clone(), Some(org)).await?;
    Ok(a)
}

async fn count_owners(tx: &Tx, org: OrgId) -> DomainResult<u64> {
    Ok(members_in_org(org)
        .filter(memberships::Column::Role.eq(Role::Owner))
        .count(&**tx)
        .await?)
}

/// Changes a member's role. ADMIN and OWNER may change roles; only an OWNER may make an
/// owner or change an owner's role; the last owner cannot be demoted.
pub async fn change_role(
    svc: &Services,
    caller: UserId,
    org: OrgId,
    target: UserId,
    role: Role,
) -> DomainResult<memberships::Model> {
    let mut tx = Tx::begin(&svc.db).await?;
    let a = access_locked(&tx, caller, org).await?;
    a.require(Role::Admin, "change roles")?;
    let m = membership(&*tx, org, target)
        .await?
        .ok_or(DomainError::NotFound("Member"))?;
    let current = m.role;
    if (current == Role::Owner || role == Role::Owner) && a.role < Role::Owner {
        return Err(DomainError::PermissionDenied(
            "Only owners can make someone an owner or change an owner's role.".into(),
        ));
    }
    if current == Role::Owner && role != Role::Owner && count_owners(&tx, org).await? <= 1 {
        return Err(DomainError::LastOwner);
    }
    if current == role {
        return Ok(m);
    }
    let mut am: memberships::ActiveModel = m.into();
    am.role = Set(role);
    let m = am.update(&*tx).await?;
    tx.revoke(crate::db::bus::Revocation::User(m.user_id));
    tx.commit(&svc.bus).await?;
    Ok(m)
}

/// Removes a member (ADMIN or OWNER; only an OWNER removes an owner; never the last owner).
pub async fn remove_member(
    svc: &Services,
    caller: &users::Model,
    org: OrgId,
    target: UserId,
) -> DomainResult<MembershipId> {
    let mut tx = Tx::begin(&svc.db).await?;
    let a = access_locked(&tx, caller.id, org).await?;
    if target != caller.id {
        a.require(Role::Admin, "remove members")?;
    }
    let m = membership(&*tx, org, target)
        .await?
        .ok_or(DomainError::NotFound("Member"))?;
    if m.role == Role::Owner && a.role < Role::Owner {
        return Err(DomainError::PermissionDenied(
            "Only owners can remove an owner.".into(),
        ));
    }
    let removed = delete_membership(&mut tx, svc, &a.org, m, caller).await?;
    tx.commit(&svc.bus).await?;
    Ok(removed)
}

/// The caller leaves an organization (never as its last owner).
pub async fn leave(
    svc: &Services,
    caller: &users::Model,
    org: OrgId,
) -> DomainResult<MembershipId> {
    let mut tx = Tx::begin(&svc.db).await?;
    let a = access_locked(&tx, caller.id, org).await?;
    let m = membership(&*tx, org, caller.id)
        .await?
        .ok_or(DomainError::Forbidden)?;
    let removed = delete_membership(&mut tx, svc, &a.org, m, caller).await?;
    tx.commit(&svc.bus).await?;
    Ok(removed)
}

async fn delete_membership(
    tx: &mut Tx,
    svc: &Services,
    org: &organizations::Model,
    m: memberships::Model,
    caller: &users::Model,
) -> DomainResult<MembershipId> {
    let now = svc.now();
    let org_id = org.id;
    if m.role == Role::Owner && count_owners(tx, org_id).await? <= 1 {
        return Err(DomainError::LastOwner);
    }
    let target = users::Entity::find_by_id(m.user_id)
        .one(&**tx)
        .await?
        .ok_or(DomainError::NotFound("Member"))?;
    // The organization's growth numbers describe its current members: what this membership
    // contributed leaves with it.
    let probe = metrics::probe::Probe::open(
        tx,
        svc,
        metrics::sql::Only {
            members: vec![target.id],
            ..Default::default()
        },
        &[target.id],
        metrics::probe::Scopes::Orgs,
    )
    .await?;
    memberships::Entity::delete_by_id(m.id).exec(&**tx).await?;
    tx.revoke(crate::db::bus::Revocation::User(m.user_id));
    probe.close(tx, svc).await?;
    // Whoever had this organization active lands in another of theirs (or none).
    if target.active_organization_id == Some(org.id) {
        let next = memberships::Entity::find()
            .filter(memberships::Column::UserId.eq(target.id))
            .order_by(memberships::Column::Id, Order::Asc)
            .one(&**tx)
            .await?
            .map(|m| m.organization_id);
        identity::set_active_org(&**tx, target.clone(), next).await?;
    }
    let left = caller.id == target.id;
    outbox::record(
        tx,
        now,
        Event {
            org: org_id,
            kind: ActivityType::MemberRemoved,
            actor: Actor::user(caller.id),
            resource: None,
            summary: if left {
                format!("{} left {}", target.name, org.name)
            } else {
                format!("{} removed {} from {}", caller.name, target.name, org.name)
            },
            data: json!({
                "userId": target.id.to_string(),
                "role": m.role.as_api(),
                "reason": if left { "left" } else { "removed" },
            }),
            webhook: None,
        },
    )
    .await?;
    Ok(m.id)
}

/// One page of an organization's members, in the order they joined.
pub async fn members(
    db: &impl ConnectionTrait,
    org: OrgId,
    req: PageRequest,
) -> DomainResult<Page<memberships::Model>> {
    page::fetch(
        db,
        members_in_org(org),
        memberships::Column::Id,
        Order::Asc,
        req,
    )
    .await
}

/// Like [`members`], each membership with its user, in the same statement.
pub async fn members_with_users(
    db: &impl ConnectionTrait,
    org: OrgId,
    req: PageRequest,
) -> DomainResult<Page<(memberships::Model, users::Model)>> {
    let to_user = memberships::Entity::belongs_to(users::Entity)
        .from(memberships::Column::UserId)
        .to(users::Column::Id)
        .into();
    page::fetch_joined::<_, users::Entity, _>(
        db,
        members_in_org(org),
        to_user,
        memberships::Column::Id,
        Order::Asc,
        req,
    )
    .await
}

/// Every membership of a user, oldest first, with its organization.
pub async fn memberships_of(
    db: &impl ConnectionTrait,
    user: UserId,
) -> DomainResult<Vec<(memberships::Model, organizations::Model)>> {
    let ms = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user.0))
        .order_by(memberships::Column::Id, Order::Asc)
        .all(db)
        .await?;
    let orgs = orgs_by_ids(
        db,
        &ms.iter().map(|m| m.organization_id).collect::<Vec<_>>(),
    )
    .await?;
    Ok(ms
        .into_iter()
        .filter_map(|m| {
            let o = orgs.iter().find(|o| o.id == m.organization_id)?.clone();
            Some((m, o))
        })
        .collect())
}

/// Organizations by id (for batch loading; callers check access themselves).
pub async fn orgs_by_ids(
    db: &impl ConnectionTrait,
    ids: &[OrgId],
) -> DomainResult<Vec<organizations::Model>> {
    Ok(organizations::Entity::find()
        .filter(organizations::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// One page of an organization's activity, newest first.
pub async fn activity(
    db: &impl ConnectionTrait,
    org: OrgId,
    req: PageRequest,
) -> DomainResult<Page<entity::activity_events::Model>> {
    page::fetch(
        db,
        super::activity::in_org(org),
        entity::activity_events::Column::Id,
        Order::Desc,
        req,
    )
    .await
}
