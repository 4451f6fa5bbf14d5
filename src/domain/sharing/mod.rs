//! Shared links and guest access.
//!
//! A link gives VIEW, COMMENT or EDIT on one resource to ANYONE holding it, or only to
//! signed-in members of its ORGANIZATION. Its token is derived (DESIGN.md), so the creator
//! and admins can print the URL again and a revoked link stops working at once. A guest
//! never reaches anything but the linked resource.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, Order, QueryFilter,
    QuerySelect, Select,
};
use serde_json::json;

use super::{
    access::OrgView,
    activity::ActivityType,
    entitlements,
    ids::{OrgId, ProjectId, SharedLinkId, UserId},
    metrics::{probe::Probe, sql::Only},
    orgs::{self, Role},
    page::{self, Page, PageRequest},
    projects::{self},
    referrals, tenancy,
    tokens::{Keys, Purpose},
    DomainError, DomainResult, Services,
};
use crate::{
    db::Tx,
    outbox::{self, Actor, Event},
};
use entity::{organizations, projects as project_rows, shared_links, users};

mod cache;
mod guest;

pub use cache::*;
pub use guest::*;

pub use entity::enums::{Audience, Permission, ResourceType};

/// Tenant-scoped query: the shared links of one organization.
pub fn in_org(org: OrgId) -> Select<shared_links::Entity> {
    tenancy::in_org(org)
}

/// Tenant-scoped query: the links of one organization still usable at `now` (not revoked,
/// not expired): what the `active_shared_links` limit counts.
pub fn active_in_org(org: OrgId, now: DateTime<Utc>) -> Select<shared_links::Entity> {
    in_org(org)
        .filter(shared_links::Column::RevokedAt.is_null())
        .filter(
            sea_orm::Condition::any()
                .add(shared_links::Column::ExpiresAt.is_null())
                .add(shared_links::Column::ExpiresAt.gt(now)),
        )
}

/// The URL of a link: `PUBLIC_URL/s/{token}`.
pub fn url(svc: &Services, link: &shared_links::Model) -> String {
    format!("{}/s/{}", svc.config.public_url, token(&svc.keys, link))
}

/// The current token of a link.
pub fn token(keys: &Keys, link: &shared_links::Model) -> String {
    keys.derive(Purpose::SharedLink, link.id, link.token_version)
}

/// What `createSharedLink` asks for.
#[derive(Clone, Debug)]
pub struct NewLink {
    /// The project shared.
    pub project: ProjectId,
    /// What holders may do.
    pub permission: Permission,
    /// Who may open it.
    pub audience: Audience,
    /// Optional expiry (must be in the future).
    pub expires_at: Option<DateTime<Utc>>,
    /// Product surface label.
    pub surface: Option<String>,
}

/// Creates a shared link to a project of the caller's organization.
pub async fn create(
    svc: &Services,
    caller: &users::Model,
    req: NewLink,
) -> DomainResult<shared_links::Model> {
    let now = svc.now();
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(DomainError::invalid(
            &["input", "expiresAt"],
            "The expiry must be in the future.",
        ));
    }
    let surface = req
        .surface
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if surface.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(DomainError::invalid(
            &["input", "surface"],
            "surface can be at most 100 characters long.",
        ));
    }
    let mut tx = Tx::begin(&svc.db).await?;
    let (project, _) = projects::get(&*tx, caller.id, req.project).await?;
    // Lock the organization: the active-links limit is checked and used in one step.
    let access = orgs::access_locked(&tx, caller.id, project.organization_id).await?;
    if req.permission == Permission::Edit {
        entitlements::require(&*tx, svc, &access.org, "edit_links").await?;
    }
    entitlements::consume(&mut tx, svc, &access.org, "active_shared_links", 1).await?;
    let link = shared_links::ActiveModel {
        id: Set(SharedLinkId::generate()),
        organization_id: Set(project.organization_id),
        resource_type: Set(ResourceType::Project),
        resource_id: Set(project.id.0),
        permission: Set(req.permission),
        audience: Set(req.audience),
        created_by_user_id: Set(caller.id),
        token_version: Set(1),
        surface: Set(surface),
        expires_at: Set(req.expires_at),
        revoked_at: Set(None),
        created_at: Set(now),
        access_count: Set(0),
        unique_visitors: Set(0),
        first_accessed_at: Set(None),
        last_accessed_at: Set(None),
    }
    .insert(&*tx)
    .await?;
    let org = project.organization_id;
    referrals::record(
        &tx,
        now,
        Some(org),
        Some(caller.id),
        "shared",
        Some(("shared_link", link.id.0)),
        None,
    )
    .await?;
    outbox::record(
        &mut tx,
        now,
        Event {
            org,
            kind: ActivityType::SharedLinkCreated,
            actor: Actor::user(caller.id),
            resource: Some(("PROJECT", project.id.0)),
            summary: format!(
                "{} shared {} ({})",
                caller.name,
                project.name,
                req.permission.as_str()
            ),
            data: json!({
                "sharedLinkId": link.id.to_string(),
                "permission": req.permission.as_str().to_uppercase(),
                "audience": req.audience.as_str().to_uppercase(),
            }),
            webhook: None,
        },
    )
    .await?;
    Probe::created(
        &mut tx,
        svc,
        Only {
            links: vec![link.id],
            ..Only::default()
        },
        &[],
    )
    .await?;
    super::activation::on(
        &mut tx,
        svc,
        crate::config::ActivationEvent::SharedLinkCreated,
        now,
        caller,
        org,
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(link)
}

/// A link the caller may manage: its creator, or an ADMIN/OWNER of its organization.
async fn manageable(
    db: &impl ConnectionTrait,
    caller: UserId,
    id: SharedLinkId,
) -> DomainResult<(shared_links::Model, orgs::OrgAccess)> {
    let link = tenancy::find_for_member::<shared_links::Entity>(caller, id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("Shared link"))?;
    let access = match orgs::access(db, caller, link.organization_id).await {
        Ok(a) => a,
        Err(DomainError::Forbidden) => return Err(DomainError::NotFound("Shared link")),
        Err(e) => return Err(e),
    };
    if link.created_by_user_id != caller {
        access.require(Role::Admin, "manage other people's links")?;
    }
    Ok((link, access))
}

/// Revokes a link: its token stops working at once (LINK_REVOKED).
pub async fn revoke(
    svc: &Services,
    caller: &users::Model,
    id: SharedLinkId,
) -> DomainResult<shared_links::Model> {
    let mut tx = Tx::begin(&svc.db).await?;
    let (link, _) = manageable(&*tx, caller.id, id).await?;
    if link.revoked_at.is_some() {
        return Ok(link);
    }
    let mut am: shared_links::ActiveModel = link.into();
    am.revoked_at = Set(Some(svc.now()));
    let link = am.update(&*tx).await?;
    tx.revoke(crate::db::bus::Revocation::Link(link.id));
    tx.commit(&svc.bus).await?;
    Ok(link)
}

/// Whether the caller may read a link's URL again (its creator or an org admin).
pub fn may_read_url(link: &shared_links::Model, caller: UserId, role: Role) -> bool {
    link.created_by_user_id == caller || role >= Role::Admin
}

/// A link that checked out, with what it points at.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The link.
    pub link: shared_links::Model,
    /// The project.
    pub project: project_rows::Model,
    /// Its organization.
    pub organization: organizations::Model,
    /// Who created the link.
    pub creator: users::Model,
    /// The caller's role in the organization, when they are a member.
    pub member_role: Option<Role>,
}

impl Opened {
    /// What holders of this link may do.
    pub fn permission(&self) -> Permission {
        self.link.permission
    }
}

/// Resolves a token to a usable link: NOT_FOUND for unknown or forged tokens, LINK_REVOKED,
/// LINK_EXPIRED, and for ORGANIZATION links a signed-in member is required.
pub async fn resolve(
    svc: &Services,
    db: &impl ConnectionTrait,
    token: &str,
    viewer: Option<&users::Model>,
) -> DomainResult<Opened> {
    resolve_with(svc, db, token, viewer, None).await
}

async fn resolve_with(
    svc: &Services,
    db: &impl ConnectionTrait,
    token: &str,
    viewer: Option<&users::Model>,
    cache: Option<&LinkCache>,
) -> DomainResult<Opened> {
    const GONE: DomainError = DomainError::NotFound("Shared link");
    let id = Keys::claimed_id(token).ok_or(GONE)?;
    // The hot path of every visit: one query for the link and everything it shows (or none,
    // from the cache, when nothing was written since).
    let (link, project, organization, creator) = match cache {
        Some(c) => c.get(svc, db, id).await?,
        None => load_joined(db, id).await?,
    }
    .ok_or(GONE)?;
    // An organization being deleted shares nothing any more.
    if !svc
        .keys
        .verify(Purpose::SharedLink, token, link.id, link.token_version)
        || organization.deletion_scheduled_for.is_some()
    {
        return Err(GONE);
    }
    if link.revoked_at.is_some() {
        return Err(DomainError::LinkRevoked);
    }
    if link.expires_at.is_some_and(|e| e <= svc.now()) {
        return Err(DomainError::LinkExpired);
    }
    let org = link.organization_id;
    let member_role = match viewer {
        Some(u) => orgs::find_with_role(db, org, u.id).await?.map(|(_, r)| r),
        None => None,
    };
    if link.audience == Audience::Organization && member_role.is_none() {
        return Err(match viewer {
            None => DomainError::Unauthenticated(
                "This link is only for members of its organization. Sign in first.",
            ),
            Some(_) => DomainError::Forbidden,
        });
    }
    Ok(Opened {
        link,
        project,
        organization,
        creator,
        member_role,
    })
}

/// One page of an organization's links, newest first, as `viewer` sees them: admins and
/// owners all, members their own, the platform side none (PERMISSION_DENIED).
pub async fn list(
    db: &impl ConnectionTrait,
    view: &OrgView,
    viewer: UserId,
    req: PageRequest,
) -> DomainResult<Page<shared_links::Model>> {
    let creator = view.links_of(viewer)?;
    let mut q = in_org(view.id());
    if let Some(c) = creator {
        q = q.filter(shared_links::Column::CreatedByUserId.eq(c.0));
    }
    page::fetch(db, q, shared_links::Column::Id, Order::Desc, req).await
}

/// The links of one of `view`'s projects as `viewer` sees them: admins and owners all,
/// members their own, the platform side none (PERMISSION_DENIED).
pub async fn of_project(
    db: &impl ConnectionTrait,
    view: &OrgView,
    viewer: UserId,
    project: ProjectId,
) -> DomainResult<Vec<shared_links::Model>> {
    use sea_orm::QueryOrder;
    let creator = view.links_of(viewer)?;
    let mut q = in_org(view.id()).filter(shared_links::Column::ResourceId.eq(project.0));
    if let Some(c) = creator {
        q = q.filter(shared_links::Column::CreatedByUserId.eq(c.0));
    }
    Ok(q.order_by(shared_links::Column::Id, Order::Asc)
        .all(db)
        .await?)
}

/// Tenant-scoped: the ids of an organization's links to one resource.
pub(crate) async fn of_resource(
    db: &impl ConnectionTrait,
    org: OrgId,
    project: ProjectId,
) -> DomainResult<Vec<SharedLinkId>> {
    Ok(in_org(org)
        .select_only()
        .column(shared_links::Column::Id)
        .filter(shared_links::Column::ResourceId.eq(project.0))
        .into_tuple()
        .all(db)
        .await?)
}

/// A link by id, for a caller who is a member of its organization.
pub async fn get(
    svc: &Services,
    caller: UserId,
    id: SharedLinkId,
) -> DomainResult<(shared_links::Model, orgs::OrgAccess)> {
    let link = tenancy::find_for_member::<shared_links::Entity>(caller, id)
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::NotFound("Shared link"))?;
    let access = orgs::access(&svc.db.read, caller, link.organization_id).await?;
    Ok((link, access))
}
