//! What a link holder does: open the link (a counted visit), comment and edit as a guest,
//! and the comments they claim on signing up.
use rand::RngCore;
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};

use super::*;
use crate::domain::{
    entitlements,
    identity::Name,
    projects::{self, Author},
    ratelimit::{self, Client},
    DomainError, DomainResult, Services,
};
use crate::{
    db::Tx,
    outbox::{
        visits::{Visit, VisitRefused},
        Actor,
    },
};
use entity::{comments, projects as project_rows, shared_links, users};

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

pub(super) fn require(opened: &Opened, needed: Permission) -> DomainResult<()> {
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
