//! Organizations (with their plan as it is now), users and memberships.
use sea_orm::DbErr;
use serde_json::json;

use super::{at, derived, Counts, Event, Logs, Table, Writer};
use crate::seed::sim::World;

pub(super) async fn write(
    wr: &mut Writer<'_>,
    logs: &mut Logs,
    out: &mut Counts,
    w: &World,
    hash: &str,
    staff: usize,
) -> Result<(), DbErr> {
    let mut t = Table::new(
        "organizations",
        &[
            "id",
            "name",
            "invite_policy",
            "plan_key",
            "billing_anchor",
            "created_at",
        ],
    );
    for o in &w.orgs {
        t.push(
            wr,
            vec![
                o.id.into(),
                o.name.clone().into(),
                "any_member".into(),
                o.plan.into(),
                at(o.created).into(),
                at(o.created).into(),
            ],
        )
        .await?;
    }
    t.done(wr, out).await?;

    let mut t = Table::new(
        "users",
        &[
            "id",
            "email",
            "name",
            "password_hash",
            "acquisition_source",
            "invited_by_user_id",
            "invite_token_id",
            "utm_source",
            "referral_code",
            "activated_at",
            "is_staff",
            "active_organization_id",
            "created_at",
            "attributed_organization_id",
        ],
    );
    for u in &w.users {
        t.push(
            wr,
            vec![
                u.id.into(),
                u.email.clone().into(),
                format!("Demo User {}", u.n).into(),
                hash.into(),
                u.source.stored().into(),
                u.invited_by.map(|i| w.users[i].id).into(),
                u.via_token.into(),
                u.utm.map(str::to_string).into(),
                format!("demo{:x}", u.n).into(),
                u.activated.map(at).into(),
                (u.n == staff).into(),
                Some(w.orgs[u.org].id).into(),
                at(u.created).into(),
                u.attributed_org.map(|o| w.orgs[o].id).into(),
            ],
        )
        .await?;
    }
    t.done(wr, out).await?;

    let mut t = Table::new(
        "memberships",
        &["id", "organization_id", "user_id", "role", "joined_at"],
    );
    for m in &w.members {
        let (org, user) = (&w.orgs[m.org], &w.users[m.user]);
        t.push(
            wr,
            vec![
                m.id.into(),
                org.id.into(),
                user.id.into(),
                m.role.into(),
                at(m.joined).into(),
            ],
        )
        .await?;
        logs.event(
            wr,
            Event {
                id: derived(m.joined, m.id.as_u128() ^ 1),
                org: org.id,
                kind: "MEMBER_JOINED",
                actor: Some(user.id),
                project: None,
                summary: format!("Demo User {} joined {}", user.n, org.name),
                data: json!({ "role": m.role.to_uppercase() }),
                at: m.joined,
            },
        )
        .await?;
    }
    t.done(wr, out).await
}
