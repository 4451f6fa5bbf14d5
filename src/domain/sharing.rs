//! Shared links and guest access.
//!
//! A link gives VIEW, COMMENT or EDIT on one resource to ANYONE holding it, or only to
//! signed-in members of its ORGANIZATION. Its token is derived (DESIGN.md), so the creator
//! and admins can print the URL again and a revoked link stops working at once. A guest
//! never reaches anything but the linked resource.
use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    Order, QueryFilter, QuerySelect, Select,
};
use serde_json::json;

use super::{
    access::OrgView,
    activity::ActivityType,
    entitlements,
    identity::Name,
    ids::{OrgId, ProjectId, SharedLinkId, UserId},
    metrics::{probe::Probe, sql::Only},
    orgs::{self, Role},
    page::{self, Page, PageRequest},
    projects::{self, Author},
    ratelimit::{self, Client},
    referrals, tenancy,
    tokens::{Keys, Purpose},
    DomainError, DomainResult, Services,
};
use crate::{
    db::Tx,
    outbox::{
        self,
        visits::{Visit, VisitRefused},
        Actor, Event,
    },
};
use entity::{comments, organizations, projects as project_rows, shared_links, users};

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

/// Caches what a link shows (link, project, organization, creator) for the visit hot path.
///
/// An entry is valid only while no write transaction of this process has committed since it
/// was read (the bus's epoch), so it can never show a revoked link or an old version of a
/// project. That is exact only when every writer is this process, i.e. on SQLite; on
/// PostgreSQL, where other instances write too, the cache is off.
///
/// It holds at most `budget` bytes (`KFACTOR_LINK_CACHE_BYTES`), weighing each entry by what
/// it holds (a project's content can be 100 kB), and evicts the least recently used first.
#[derive(Debug)]
pub struct LinkCache {
    budget: usize,
    entries: std::sync::Mutex<Entries>,
}

#[derive(Debug)]
struct Entries {
    lru: lru::LruCache<uuid::Uuid, (u64, Joined, usize)>,
    bytes: usize,
}

impl LinkCache {
    /// A cache holding at most `budget` bytes; 0 (or `enabled == false`) turns it off.
    pub fn new(enabled: bool, budget: usize) -> LinkCache {
        LinkCache {
            budget: if enabled { budget } else { 0 },
            entries: std::sync::Mutex::new(Entries {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// How many entries and bytes it holds now.
    pub fn usage(&self) -> (usize, usize) {
        let e = self.entries.lock().expect("link cache");
        (e.lru.len(), e.bytes)
    }

    /// What an entry weighs: its fixed part plus everything its strings hold (the debug
    /// rendering is an upper bound of those, whatever columns the rows gain later).
    fn weight(joined: &Joined) -> usize {
        std::mem::size_of::<(uuid::Uuid, (u64, Joined, usize))>() + format!("{joined:?}").len()
    }

    async fn get(
        &self,
        svc: &Services,
        db: &impl ConnectionTrait,
        id: uuid::Uuid,
    ) -> DomainResult<Option<Joined>> {
        if self.budget == 0 {
            return load_joined(db, id).await;
        }
        // Read the epoch before the database: a write committing meanwhile makes the entry
        // stale at once.
        let epoch = svc.bus.epoch();
        if let Some((at, joined, _)) = self.entries.lock().expect("link cache").lru.get(&id) {
            if *at == epoch {
                return Ok(Some(joined.clone()));
            }
        }
        let joined = load_joined(db, id).await?;
        if let Some(j) = &joined {
            let weight = Self::weight(j);
            let mut e = self.entries.lock().expect("link cache");
            if let Some((_, _, old)) = e.lru.pop(&id) {
                e.bytes -= old;
            }
            // An entry larger than the whole budget is not worth evicting everything for.
            if weight <= self.budget {
                while e.bytes + weight > self.budget {
                    match e.lru.pop_lru() {
                        Some((_, (_, _, w))) => e.bytes -= w,
                        None => break,
                    }
                }
                e.lru.put(id, (epoch, j.clone(), weight));
                e.bytes += weight;
            }
            ::metrics::gauge!("kfactor_link_cache_bytes").set(e.bytes as f64);
        }
        Ok(joined)
    }
}

type Joined = (
    shared_links::Model,
    project_rows::Model,
    organizations::Model,
    users::Model,
);

/// A link with its project, organization and creator, in one round trip.
async fn load_joined(db: &impl ConnectionTrait, id: uuid::Uuid) -> DomainResult<Option<Joined>> {
    use sea_orm::{
        sea_query::{Alias, Expr, ExprTrait, Query},
        FromQueryResult, IdenStatic, Iterable,
    };
    fn cols<E: EntityTrait>(q: &mut sea_orm::sea_query::SelectStatement, prefix: &str)
    where
        E::Column: IdenStatic,
    {
        for c in E::Column::iter() {
            q.expr_as(
                Expr::col((E::default(), c)),
                Alias::new(format!("{prefix}{}", c.as_str())),
            );
        }
    }
    let mut q = Query::select();
    cols::<shared_links::Entity>(&mut q, "l_");
    cols::<project_rows::Entity>(&mut q, "p_");
    cols::<organizations::Entity>(&mut q, "o_");
    cols::<users::Entity>(&mut q, "u_");
    q.from(shared_links::Entity)
        .inner_join(
            project_rows::Entity,
            Expr::col((project_rows::Entity, project_rows::Column::Id))
                .equals((shared_links::Entity, shared_links::Column::ResourceId)),
        )
        .inner_join(
            organizations::Entity,
            Expr::col((organizations::Entity, organizations::Column::Id))
                .equals((shared_links::Entity, shared_links::Column::OrganizationId)),
        )
        .inner_join(
            users::Entity,
            Expr::col((users::Entity, users::Column::Id))
                .equals((shared_links::Entity, shared_links::Column::CreatedByUserId)),
        )
        .and_where(Expr::col((shared_links::Entity, shared_links::Column::Id)).eq(id));
    let Some(row) = db.query_one(&q).await? else {
        return Ok(None);
    };
    Ok(Some((
        shared_links::Model::from_query_result(&row, "l_")?,
        project_rows::Model::from_query_result(&row, "p_")?,
        organizations::Model::from_query_result(&row, "o_")?,
        users::Model::from_query_result(&row, "u_")?,
    )))
}

/// The distinct-visitor key of an open: a signed-in user's id, else the guest's visitor id,
/// else a fresh one (the visit then counts as its own visitor).
pub fn visitor_key(
    viewer: Option<&users::Model>,
    visitor_id: Option<&str>,
) -> DomainResult<String> {
    if let Some(u) = viewer {
        return Ok(u.id.to_string());
    }
    match visitor_id.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) if v.len() > 128 || v.chars().any(char::is_control) => Err(DomainError::invalid(
            &["visitorId"],
            "visitorId can be at most 128 printable characters.",
        )),
        Some(v) => Ok(v.to_string()),
        None => {
            let mut b = [0u8; 16];
            rand::rng().fill_bytes(&mut b);
            Ok(format!("anon_{}", hex::encode(b)))
        }
    }
}

/// PUBLIC: opens a link and counts the visit (group-committed; returns after it is durable).
pub async fn open(
    svc: &Services,
    client: &Client,
    token: &str,
    viewer: Option<&users::Model>,
    visitor_id: Option<&str>,
) -> DomainResult<Opened> {
    ratelimit::public_lookup(svc, client)?;
    let mut visitor = visitor_key(viewer, visitor_id)?;
    if viewer.is_none() {
        // Guests choose their ids; each address introduces only so many (ratelimit).
        visitor = ratelimit::visitor(svc, client, visitor);
    }
    let opened = resolve_with(svc, &svc.db.read, token, viewer, Some(&svc.link_cache)).await?;
    svc.visits
        .record(Visit {
            link: opened.link.id,
            org: opened.link.organization_id,
            resource: opened.link.resource_id,
            visitor_id: visitor,
            user_id: viewer.map(|u| u.id),
            at: svc.now(),
        })
        .await
        .map_err(|e| match e {
            VisitRefused::Gone => DomainError::NotFound("Shared link"),
            other => DomainError::Internal(anyhow::anyhow!(other)),
        })?;
    Ok(opened)
}

fn require(opened: &Opened, needed: Permission) -> DomainResult<()> {
    if opened.permission() >= needed {
        Ok(())
    } else {
        Err(DomainError::PermissionDenied(format!(
            "This link lets you {} only.",
            match opened.permission() {
                Permission::View => "view",
                Permission::Comment => "view and comment",
                Permission::Edit => "edit",
            }
        )))
    }
}

/// PUBLIC: a guest comments through a COMMENT or EDIT link.
pub async fn guest_comment(
    svc: &Services,
    client: &Client,
    token: &str,
    body: &str,
    guest_name: &str,
    visitor_id: Option<&str>,
    viewer: Option<&users::Model>,
) -> DomainResult<comments::Model> {
    let body = projects::parse_comment(body, &["input", "body"])?;
    let guest_name = Name::parse(guest_name, "guestName").map_err(|e| e.under("input"))?;
    let visitor = match viewer {
        Some(_) => None,
        None => visitor_id
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| visitor_key(None, Some(v)))
            .transpose()?,
    };
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let opened = resolve(svc, &*tx, token, viewer).await?;
    require(&opened, Permission::Comment)?;
    ratelimit::guest_comment(svc, client, opened.link.id, visitor.as_deref())?;
    if opened.member_role.is_none() {
        entitlements::require(&*tx, svc, &opened.organization, "guest_comments").await?;
    }
    let c = projects::insert_comment(
        &mut tx,
        svc,
        now,
        &opened.project,
        body,
        Author {
            user: viewer,
            guest_name: viewer.is_none().then(|| guest_name.as_str().to_string()),
            visitor_id: visitor,
            link: Some(opened.link.id),
        },
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(c)
}

/// PUBLIC: a guest edits through an EDIT link.
pub async fn guest_edit(
    svc: &Services,
    client: &Client,
    token: &str,
    name: Option<&str>,
    content: Option<&str>,
    viewer: Option<&users::Model>,
) -> DomainResult<(project_rows::Model, Opened)> {
    let name = name
        .map(|n| projects::parse_name(n, &["input", "name"]))
        .transpose()?;
    let content = content
        .map(|c| projects::parse_content(c, &["input", "content"]))
        .transpose()?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let opened = resolve(svc, &*tx, token, viewer).await?;
    require(&opened, Permission::Edit)?;
    ratelimit::guest_edit(svc, client, opened.link.id)?;
    let (actor, actor_name) = match viewer {
        Some(u) => (Actor::user(u.id), u.name.clone()),
        None => (
            Actor {
                user_id: None,
                guest_name: Some("A guest".into()),
            },
            "A guest".to_string(),
        ),
    };
    let p = projects::apply_update(
        &mut tx,
        now,
        opened.project.clone(),
        name,
        content,
        actor,
        &actor_name,
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok((p, opened))
}

/// Gives a new user the guest comments they wrote with `visitor_id` in the shared link's
/// organization, in the signup's transaction.
pub(crate) async fn claim_guest_comments(
    tx: &Tx,
    link: &shared_links::Model,
    visitor_id: &str,
    user: &users::Model,
) -> DomainResult<u64> {
    let res = comments::Entity::update_many()
        .col_expr(comments::Column::AuthorUserId, Expr::value(user.id))
        .col_expr(
            comments::Column::GuestName,
            Expr::value(Option::<String>::None),
        )
        // Only comments made in the shared link's organization: a visitor id is client
        // supplied, so it must not reach other tenants' comments.
        .filter(comments::Column::OrganizationId.eq(link.organization_id))
        .filter(comments::Column::VisitorId.eq(visitor_id))
        .filter(comments::Column::AuthorUserId.is_null())
        .exec(&**tx)
        .await?;
    Ok(res.rows_affected)
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
