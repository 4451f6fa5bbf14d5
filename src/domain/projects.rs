//! Projects, the artifact people create and share, and their comments.
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    IdenStatic, Iterable, Order, PaginatorTrait, QueryFilter, QuerySelect, Select,
};
use serde_json::json;

use super::metrics::{probe::Probe, sql::Only};
use super::{
    activity::ActivityType,
    ids::{CommentId, InvitationId, OrgId, ProjectId, SharedLinkId, UserId},
    orgs::{self, OrgAccess, Role},
    page::{self, Page, PageRequest},
    tenancy, DomainError, DomainResult, Services,
};
use crate::db::Tx;
use crate::{
    config::ActivationEvent,
    outbox::{self, Actor, Event},
};
use entity::{comments, projects, users};

/// Longest project name, in characters.
pub const MAX_NAME: usize = 200;
/// Largest project content, in characters.
pub const MAX_CONTENT: usize = 100_000;
/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 10_000;

/// Tenant-scoped query: the projects of one organization.
pub fn in_org(org: OrgId) -> Select<projects::Entity> {
    tenancy::in_org(org)
}

/// Tenant-scoped query: the comments of one project of `org` (callers checked access to
/// it; a project id of another organization matches nothing).
pub fn comments_of(org: OrgId, project: ProjectId) -> Select<comments::Entity> {
    tenancy::in_org::<comments::Entity>(org).filter(comments::Column::ProjectId.eq(project.0))
}

/// A validated project name.
pub fn parse_name(raw: &str, field: &[&str]) -> DomainResult<String> {
    // Project names show on the shared page and in activity: cleaned like other names.
    let n = super::identity::clean_name(raw);
    if n.is_empty() || n.chars().count() > MAX_NAME {
        return Err(DomainError::invalid(
            field,
            format!("A project name has 1 to {MAX_NAME} characters."),
        ));
    }
    Ok(n)
}

/// Validated project content.
pub fn parse_content(raw: &str, field: &[&str]) -> DomainResult<String> {
    if raw.chars().count() > MAX_CONTENT {
        return Err(DomainError::invalid(
            field,
            format!("Content can be at most {MAX_CONTENT} characters long."),
        ));
    }
    Ok(raw.to_string())
}

/// A validated comment body.
pub fn parse_comment(raw: &str, field: &[&str]) -> DomainResult<String> {
    let b = raw.trim();
    if b.is_empty() || b.chars().count() > MAX_COMMENT {
        return Err(DomainError::invalid(
            field,
            format!("A comment has 1 to {MAX_COMMENT} characters."),
        ));
    }
    Ok(b.to_string())
}

/// A project the caller may see, with their role in its organization.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: UserId,
    id: ProjectId,
) -> DomainResult<(projects::Model, OrgAccess)> {
    let p = tenancy::find_for_member::<projects::Entity>(caller, id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("Project"))?;
    let access = orgs::access(db, caller, p.organization_id).await?;
    Ok((p, access))
}

/// Creates a project in an organization the caller belongs to.
pub async fn create(
    svc: &Services,
    caller: &users::Model,
    org: OrgId,
    name: &str,
    content: &str,
) -> DomainResult<projects::Model> {
    let name = parse_name(name, &["input", "name"])?;
    let content = parse_content(content, &["input", "content"])?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let access = orgs::access_locked(&tx, caller.id, org).await?;
    super::entitlements::consume(&mut tx, svc, &access.org, "projects", 1).await?;
    let p = projects::ActiveModel {
        id: Set(ProjectId::generate()),
        organization_id: Set(org),
        name: Set(name),
        content: Set(content),
        created_by_user_id: Set(Some(caller.id)),
        created_by_guest_name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&*tx)
    .await?;
    outbox::record(
        &mut tx,
        now,
        Event {
            org,
            kind: ActivityType::ProjectCreated,
            actor: Actor::user(caller.id),
            resource: Some(("PROJECT", p.id.0)),
            summary: format!("{} created {}", caller.name, p.name),
            data: json!({ "projectId": p.id.to_string(), "name": p.name }),
            webhook: None,
        },
    )
    .await?;
    super::activation::on(
        &mut tx,
        svc,
        ActivationEvent::ProjectCreated,
        now,
        caller,
        access.org.id,
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(p)
}

/// Applies a change of name and/or content, as a member or a guest with an EDIT link.
pub(crate) async fn apply_update(
    tx: &mut Tx,
    now: DateTime<Utc>,
    p: projects::Model,
    name: Option<String>,
    content: Option<String>,
    actor: Actor,
    actor_name: &str,
) -> DomainResult<projects::Model> {
    let mut am: projects::ActiveModel = p.clone().into();
    let mut changed = Vec::new();
    if let Some(n) = name.filter(|n| *n != p.name) {
        am.name = Set(n);
        changed.push("name");
    }
    if let Some(c) = content.filter(|c| *c != p.content) {
        am.content = Set(c);
        changed.push("content");
    }
    if changed.is_empty() {
        return Ok(p);
    }
    am.updated_at = Set(now);
    let p = am.update(&**tx).await?;
    outbox::record(
        tx,
        now,
        Event {
            org: p.organization_id,
            kind: ActivityType::ProjectUpdated,
            actor,
            resource: Some(("PROJECT", p.id.0)),
            summary: format!("{actor_name} updated {}", p.name),
            data: json!({ "projectId": p.id.to_string(), "changed": changed }),
            webhook: None,
        },
    )
    .await?;
    Ok(p)
}

/// Updates a project (any member).
pub async fn update(
    svc: &Services,
    caller: &users::Model,
    id: ProjectId,
    name: Option<&str>,
    content: Option<&str>,
) -> DomainResult<projects::Model> {
    let name = name
        .map(|n| parse_name(n, &["input", "name"]))
        .transpose()?;
    let content = content
        .map(|c| parse_content(c, &["input", "content"]))
        .transpose()?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let (p, _) = get(&*tx, caller.id, id).await?;
    let p = apply_update(
        &mut tx,
        now,
        p,
        name,
        content,
        Actor::user(caller.id),
        &caller.name,
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(p)
}

/// Deletes a project (its creator, or an ADMIN/OWNER); its comments and links go with it.
pub async fn delete(
    svc: &Services,
    caller: &users::Model,
    id: ProjectId,
) -> DomainResult<ProjectId> {
    let mut tx = Tx::begin(&svc.db).await?;
    let (p, access) = get(&*tx, caller.id, id).await?;
    if p.created_by_user_id != Some(caller.id) {
        access.require(Role::Admin, "delete other people's projects")?;
    }
    // Its links and their visits go with it, and with them what they counted.
    let links = super::sharing::of_resource(&*tx, p.organization_id, id).await?;
    let only = Only {
        links,
        ..Only::default()
    };
    let probe = Probe::open_with_links(&tx, svc, only, &[], None).await?;
    projects::Entity::delete_by_id(p.id).exec(&*tx).await?;
    probe.close(&mut tx, svc).await?;
    tx.revoke(crate::db::bus::Revocation::Project(p.id));
    tx.commit(&svc.bus).await?;
    Ok(id)
}

/// What a merge of `source` into `target` touches: the source's invitations, links (with
/// their visitors) and the users credited to it.
async fn merge_probe(
    tx: &Tx,
    svc: &Services,
    source: OrgId,
    target: OrgId,
    caller: UserId,
) -> DomainResult<Probe> {
    use sea_orm::QuerySelect;
    let invitations: Vec<InvitationId> = super::invitations::in_org(source)
        .select_only()
        .column(entity::invitations::Column::Id)
        .into_tuple()
        .all(&**tx)
        .await?;
    let links: Vec<SharedLinkId> = super::sharing::in_org(source)
        .select_only()
        .column(entity::shared_links::Column::Id)
        .into_tuple()
        .all(&**tx)
        .await?;
    let users: Vec<UserId> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::AttributedOrganizationId.eq(source.0))
        .into_tuple()
        .all(&**tx)
        .await?;
    let only = Only {
        users,
        invitations,
        links,
        ..Only::default()
    };
    Ok(
        Probe::open_with_links(tx, svc, only, &[caller], Some(target))
            .await?
            .deleting_scope(source),
    )
}

/// Who wrote a comment.
#[derive(Clone, Debug)]
pub(crate) struct Author<'a> {
    pub user: Option<&'a users::Model>,
    pub guest_name: Option<String>,
    pub visitor_id: Option<String>,
    pub link: Option<SharedLinkId>,
}

/// Writes a comment with its COMMENT_ADDED event (and activation for a user).
pub(crate) async fn insert_comment(
    tx: &mut Tx,
    svc: &Services,
    now: DateTime<Utc>,
    p: &projects::Model,
    body: String,
    author: Author<'_>,
) -> DomainResult<comments::Model> {
    let c = comments::ActiveModel {
        id: Set(CommentId::generate()),
        project_id: Set(p.id),
        organization_id: Set(p.organization_id),
        body: Set(body),
        author_user_id: Set(author.user.map(|u| u.id)),
        guest_name: Set(author.guest_name.clone()),
        visitor_id: Set(author.visitor_id),
        shared_link_id: Set(author.link),
        created_at: Set(now),
    }
    .insert(&**tx)
    .await?;
    let (actor, name) = match author.user {
        Some(u) => (Actor::user(u.id), u.name.clone()),
        None => {
            let g = author.guest_name.unwrap_or_else(|| "A guest".into());
            (
                Actor {
                    user_id: None,
                    guest_name: Some(g.clone()),
                },
                g,
            )
        }
    };
    outbox::record(
        tx,
        now,
        Event {
            org: p.organization_id,
            kind: ActivityType::CommentAdded,
            actor,
            resource: Some(("PROJECT", p.id.0)),
            summary: format!("{name} commented on {}", p.name),
            data: json!({ "projectId": p.id.to_string(), "commentId": c.id.to_string() }),
            webhook: None,
        },
    )
    .await?;
    super::notifications::fanout::on_comment(tx, now, p, &c, author.user, &name).await?;
    if let Some(u) = author.user {
        super::activation::on(
            tx,
            svc,
            ActivationEvent::CommentAdded,
            now,
            u,
            p.organization_id,
        )
        .await?;
    }
    Ok(c)
}

/// A member comments on a project.
pub async fn add_comment(
    svc: &Services,
    caller: &users::Model,
    project: ProjectId,
    body: &str,
) -> DomainResult<comments::Model> {
    let body = parse_comment(body, &["body"])?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let (p, _) = get(&*tx, caller.id, project).await?;
    let c = insert_comment(
        &mut tx,
        svc,
        now,
        &p,
        body,
        Author {
            user: Some(caller),
            guest_name: None,
            visitor_id: None,
            link: None,
        },
    )
    .await?;
    tx.commit(&svc.bus).await?;
    Ok(c)
}

/// Whether a list reads the projects' content (up to [`MAX_CONTENT`] characters each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Read it.
    Read,
    /// Leave it in the database: each model's `content` is empty, so the caller must not
    /// show it (see [`content`]).
    Skip,
}

/// One page of an organization's projects, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    org: OrgId,
    req: PageRequest,
    content: Content,
) -> DomainResult<Page<projects::Model>> {
    let select = match content {
        Content::Read => in_org(org),
        Content::Skip => in_org(org)
            .select_only()
            .columns(projects::Column::iter().filter(|c| !matches!(c, projects::Column::Content)))
            .column_as(Expr::value(""), projects::Column::Content.as_str()),
    };
    page::fetch(db, select, projects::Column::Id, Order::Desc, req).await
}

/// The content of a project of `org` (for a project listed with [`Content::Skip`]).
pub async fn content(db: &impl ConnectionTrait, org: OrgId, id: ProjectId) -> DomainResult<String> {
    let content: Option<String> = in_org(org)
        .filter(projects::Column::Id.eq(id.0))
        .select_only()
        .column(projects::Column::Content)
        .into_tuple()
        .one(db)
        .await?;
    content.ok_or(DomainError::NotFound("Project"))
}

/// One page of a project's comments, oldest first.
pub async fn comments(
    db: &impl ConnectionTrait,
    project: &projects::Model,
    req: PageRequest,
) -> DomainResult<Page<comments::Model>> {
    page::fetch(
        db,
        comments_of(project.organization_id, project.id),
        comments::Column::Id,
        Order::Asc,
        req,
    )
    .await
}

/// Moves every project of `source` (a workspace whose only member is the caller, an OWNER
/// there) into `target` (where the caller is a member), keeps their links working, and
/// deletes the source. Returns the target and how many projects moved.
pub async fn merge_organization(
    svc: &Services,
    caller: &users::Model,
    source: OrgId,
    target: OrgId,
) -> DomainResult<(OrgAccess, u64)> {
    if source == target {
        return Err(DomainError::invalid(
            &["targetId"],
            "Choose another organization to merge into.",
        ));
    }
    let me = caller.id;
    let mut tx = Tx::begin(&svc.db).await?;
    // Lock both organizations in id order, so two opposite merges cannot deadlock.
    let (src, dst) = if source < target {
        let s = orgs::access_locked(&tx, me, source).await?;
        (s, orgs::access_locked(&tx, me, target).await?)
    } else {
        let d = orgs::access_locked(&tx, me, target).await?;
        (orgs::access_locked(&tx, me, source).await?, d)
    };
    src.require(Role::Owner, "merge this organization")?;
    let members = orgs::members_in_org(source).all(&*tx).await?;
    if members.len() != 1 {
        return Err(DomainError::PermissionDenied(
            "Only a workspace whose only member is you can be merged; remove the other members first.".into(),
        ));
    }
    // Deleting a workspace someone pays for would leave the subscription paying for nothing.
    if super::billing::attached_in_org(source).count(&*tx).await? > 0 {
        return Err(DomainError::PermissionDenied(
            "This workspace has a paid subscription: cancel it first, or merge the other way."
                .into(),
        ));
    }
    // The moved projects and active links count against the target's plan.
    let now = svc.now();
    let moving = in_org(source).count(&*tx).await? as i64;
    let moving_links = super::sharing::active_in_org(source, now)
        .count(&*tx)
        .await? as i64;
    super::entitlements::ensure_room(&*tx, svc, &dst.org, "projects", moving).await?;
    super::entitlements::ensure_room(&*tx, svc, &dst.org, "active_shared_links", moving_links)
        .await?;
    // Growth: the source's links, visits and the signups credited to it move to the
    // target; its invitations go with it (and out of the platform numbers).
    let probe = merge_probe(&tx, svc, source, target, me).await?;
    let moved = projects::Entity::update_many()
        .col_expr(projects::Column::OrganizationId, Expr::value(target.0))
        .filter(projects::Column::OrganizationId.eq(source.0))
        .exec(&*tx)
        .await?
        .rows_affected;
    comments::Entity::update_many()
        .col_expr(comments::Column::OrganizationId, Expr::value(target.0))
        .filter(comments::Column::OrganizationId.eq(source.0))
        .exec(&*tx)
        .await?;
    // Link tokens derive from the link id, which does not change: shared links keep working.
    entity::shared_links::Entity::update_many()
        .col_expr(
            entity::shared_links::Column::OrganizationId,
            Expr::value(target.0),
        )
        .filter(entity::shared_links::Column::OrganizationId.eq(source.0))
        .exec(&*tx)
        .await?;
    entity::link_visits::Entity::update_many()
        .col_expr(
            entity::link_visits::Column::OrganizationId,
            Expr::value(target.0),
        )
        .filter(entity::link_visits::Column::OrganizationId.eq(source.0))
        .exec(&*tx)
        .await?;
    users::Entity::update_many()
        .col_expr(users::Column::ActiveOrganizationId, Expr::value(target.0))
        .filter(users::Column::ActiveOrganizationId.eq(source.0))
        .exec(&*tx)
        .await?;
    // Signups credited to the source (through its links, or referrals while it was active)
    // are the target's now, like the links themselves.
    users::Entity::update_many()
        .col_expr(
            users::Column::AttributedOrganizationId,
            Expr::value(target.0),
        )
        .filter(users::Column::AttributedOrganizationId.eq(source.0))
        .exec(&*tx)
        .await?;
    entity::organizations::Entity::delete_by_id(src.org.id)
        .exec(&*tx)
        .await?;
    probe.close(&mut tx, svc).await?;
    tx.commit(&svc.bus).await?;
    Ok((dst, moved))
}
