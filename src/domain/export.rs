//! `exportMyData`: everything kfactor holds about the caller, as one JSON document.
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use super::{accounts::sessions, orgs, DomainResult, Services};
use entity::{comments, projects, users};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The caller's data: profile, memberships, the projects they created, the comments they
/// wrote and their sessions. Built at once from a handful of queries (one per kind).
pub async fn export(svc: &Services, user: &users::Model) -> DomainResult<Value> {
    let db = &svc.db.read;
    let me = user.id;
    let memberships = orgs::memberships_of(db, me).await?;
    let projects = projects::Entity::find()
        .filter(projects::Column::CreatedByUserId.eq(user.id))
        .order_by(projects::Column::Id, Order::Asc)
        .all(db)
        .await?;
    let comments = comments::Entity::find()
        .filter(comments::Column::AuthorUserId.eq(user.id))
        .order_by(comments::Column::Id, Order::Asc)
        .all(db)
        .await?;
    let sessions = sessions::list(svc, me).await?;
    Ok(json!({
        "format": "kfactor.export.v1",
        "exportedAt": ts(svc.now()),
        "profile": {
            "id": me.to_string(),
            "email": user.email,
            "name": user.name,
            "createdAt": ts(user.created_at),
            "emailVerifiedAt": user.email_verified_at.map(ts),
            "acquisitionSource": user.acquisition_source.as_str().to_uppercase(),
            "invitedBy": user.invited_by_user_id.map(|u| u.to_string()),
            "utmSource": user.utm_source,
            "referralCode": user.referral_code,
            "activatedAt": user.activated_at.map(ts),
        },
        "memberships": memberships.iter().map(|(m, o)| json!({
            "organizationId": o.id.to_string(),
            "organizationName": o.name,
            "role": m.role.as_api(),
            "joinedAt": ts(m.joined_at),
        })).collect::<Vec<_>>(),
        "projects": projects.iter().map(|p| json!({
            "id": p.id.to_string(),
            "organizationId": p.organization_id.to_string(),
            "name": p.name,
            "content": p.content,
            "createdAt": ts(p.created_at),
            "updatedAt": ts(p.updated_at),
        })).collect::<Vec<_>>(),
        "comments": comments.iter().map(|c| json!({
            "id": c.id.to_string(),
            "projectId": c.project_id.to_string(),
            "body": c.body,
            "createdAt": ts(c.created_at),
        })).collect::<Vec<_>>(),
        "sessions": sessions.iter().map(|s| json!({
            "createdAt": ts(s.created_at),
            "lastUsedAt": ts(s.last_used_at),
            "expiresAt": ts(s.expires_at),
            "userAgent": s.user_agent,
            "ip": s.ip,
        })).collect::<Vec<_>>(),
    }))
}
