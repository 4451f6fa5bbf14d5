//! Projects with their comments, shared links with their visits and visitors.
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use serde_json::json;
use uuid::Uuid;

use super::{at, derived, Counts, Credit, Event, Logs, Table, Writer};
use crate::domain::ids::{ProjectId, SharedLinkId};
use crate::seed::sim::{Ms, World};

pub(super) async fn write(
    wr: &mut Writer<'_>,
    logs: &mut Logs,
    out: &mut Counts,
    w: &World,
) -> Result<(), DbErr> {
    projects(wr, logs, out, w).await?;
    links(wr, logs, out, w).await
}

async fn projects(
    wr: &mut Writer<'_>,
    logs: &mut Logs,
    out: &mut Counts,
    w: &World,
) -> Result<(), DbErr> {
    let mut t = Table::new(
        "projects",
        &[
            "id",
            "organization_id",
            "name",
            "content",
            "created_by_user_id",
            "created_by_guest_name",
            "created_at",
            "updated_at",
        ],
    );
    for (n, p) in w.projects.iter().enumerate() {
        let org = &w.orgs[p.org];
        let creator = &w.users[p.creator];
        t.push(
            wr,
            vec![
                p.id.into(),
                org.id.into(),
                format!("Project {n}").into(),
                "A demo project: the plan, the notes and the open questions.".into(),
                Some(creator.id).into(),
                Option::<String>::None.into(),
                at(p.created).into(),
                at(p.created).into(),
            ],
        )
        .await?;
        logs.event(
            wr,
            Event {
                id: derived(p.created, p.id.as_u128() ^ 1),
                org: org.id,
                kind: "PROJECT_CREATED",
                actor: Some(creator.id),
                project: Some(p.id),
                summary: format!("Demo User {} created Project {n}", creator.n),
                data: json!({ "projectId": ProjectId(p.id).to_string(), "name": format!("Project {n}") }),
                at: p.created,
            },
        )
        .await?;
    }
    t.done(wr, out).await?;

    let mut comments = Table::new(
        "comments",
        &[
            "id",
            "project_id",
            "organization_id",
            "body",
            "author_user_id",
            "guest_name",
            "visitor_id",
            "shared_link_id",
            "created_at",
        ],
    );
    for p in &w.projects {
        let org = &w.orgs[p.org];
        for (k, (author, when)) in p.comments.iter().enumerate() {
            let id = derived(*when, p.id.as_u128() ^ (k as u128 + 1));
            let author = author.map(|a| w.users[a].id);
            comments
                .push(
                    wr,
                    vec![
                        id.into(),
                        p.id.into(),
                        org.id.into(),
                        "Looks good, one question on the second part.".into(),
                        author.into(),
                        author.is_none().then(|| "A guest".to_string()).into(),
                        Option::<String>::None.into(),
                        Option::<Uuid>::None.into(),
                        at(*when).into(),
                    ],
                )
                .await?;
        }
    }
    comments.done(wr, out).await
}

async fn links(
    wr: &mut Writer<'_>,
    logs: &mut Logs,
    out: &mut Counts,
    w: &World,
) -> Result<(), DbErr> {
    let mut t = Table::new(
        "shared_links",
        &[
            "id",
            "organization_id",
            "resource_type",
            "resource_id",
            "permission",
            "audience",
            "created_by_user_id",
            "token_version",
            "surface",
            "expires_at",
            "revoked_at",
            "created_at",
            "access_count",
            "unique_visitors",
            "first_accessed_at",
            "last_accessed_at",
        ],
    );
    for l in &w.links {
        let org = &w.orgs[l.org];
        let creator = &w.users[l.creator];
        let mut first_seen: BTreeMap<&str, Ms> = BTreeMap::new();
        for (v, when) in &l.visits {
            first_seen.entry(v.as_str()).or_insert(*when);
        }
        let first = l.visits.iter().map(|v| v.1).min();
        let last = l.visits.iter().map(|v| v.1).max();
        t.push(
            wr,
            vec![
                l.id.into(),
                org.id.into(),
                "PROJECT".into(),
                w.projects[l.project].id.into(),
                l.permission.into(),
                "anyone".into(),
                creator.id.into(),
                1i32.into(),
                Some(l.surface.to_string()).into(),
                Option::<DateTime<Utc>>::None.into(),
                Option::<DateTime<Utc>>::None.into(),
                at(l.created).into(),
                (l.visits.len() as i64).into(),
                (first_seen.len() as i64).into(),
                first.map(at).into(),
                last.map(at).into(),
            ],
        )
        .await?;
        logs.event(
            wr,
            Event {
                id: derived(l.created, l.id.as_u128() ^ 1),
                org: org.id,
                kind: "SHARED_LINK_CREATED",
                actor: Some(creator.id),
                project: Some(w.projects[l.project].id),
                summary: format!("Demo User {} shared a project ({})", creator.n, l.permission),
                data: json!({ "sharedLinkId": SharedLinkId(l.id).to_string(), "permission": l.permission.to_uppercase(), "audience": "ANYONE" }),
                at: l.created,
            },
        )
        .await?;
        logs.credit(
            wr,
            Credit {
                org: Some(org.id),
                actor: creator.id,
                action: "shared",
                resource: ("shared_link", l.id),
                signup: None,
                at: l.created,
            },
        )
        .await?;
    }
    t.done(wr, out).await?;

    let mut visits = Table::new(
        "link_visits",
        &[
            "id",
            "shared_link_id",
            "organization_id",
            "visitor_id",
            "user_id",
            "created_at",
        ],
    );
    let mut visitors = Table::new(
        "link_visitors",
        &["shared_link_id", "visitor_id", "first_seen_at"],
    );
    for l in &w.links {
        let org = &w.orgs[l.org];
        let mut seen = BTreeSet::new();
        for (k, (v, when)) in l.visits.iter().enumerate() {
            visits
                .push(
                    wr,
                    vec![
                        derived(*when, l.id.as_u128() ^ (k as u128 + 1)).into(),
                        l.id.into(),
                        org.id.into(),
                        v.clone().into(),
                        Option::<Uuid>::None.into(),
                        at(*when).into(),
                    ],
                )
                .await?;
            if seen.insert(v.as_str()) {
                visitors
                    .push(wr, vec![l.id.into(), v.clone().into(), at(*when).into()])
                    .await?;
            }
        }
    }
    visits.done(wr, out).await?;
    visitors.done(wr, out).await
}
