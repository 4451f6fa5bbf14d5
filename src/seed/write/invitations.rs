//! Invitations with their sends, and the attribution log's credits for invitations and for
//! every viral signup (as the server writes them).
use sea_orm::DbErr;
use serde_json::json;

use super::{at, derived, Counts, Credit, Event, Logs, Table, Writer};
use crate::domain::ids::InvitationId;
use crate::seed::sim::World;

pub(super) async fn write(
    wr: &mut Writer<'_>,
    logs: &mut Logs,
    out: &mut Counts,
    w: &World,
) -> Result<(), DbErr> {
    let mut t = Table::new(
        "invitations",
        &[
            "id",
            "organization_id",
            "email",
            "role",
            "invited_by_user_id",
            "surface",
            "status",
            "token_version",
            "team_invite",
            "created_at",
            "last_sent_at",
            "send_count",
            "expires_at",
            "opened_at",
            "accepted_at",
            "accepted_by_user_id",
            "first_sent_by_user_id",
            "first_opened_at",
            "first_accepted_at",
            "first_accepted_by_user_id",
        ],
    );
    for i in &w.invitations {
        let (org, inviter) = (&w.orgs[i.org], &w.users[i.inviter]);
        let last = i.resent.unwrap_or(i.sent);
        let accepted = i.accepted.map(|(t, u)| (at(t), w.users[u].id));
        let status = match (accepted, i.revoked) {
            (Some(_), _) => "accepted",
            (None, true) => "revoked",
            (None, false) => "pending",
        };
        let sends = 1 + i32::from(i.resent.is_some());
        t.push(
            wr,
            vec![
                i.id.into(),
                org.id.into(),
                i.email.clone().into(),
                "member".into(),
                inviter.id.into(),
                i.surface.map(str::to_string).into(),
                status.into(),
                sends.into(),
                i.team.into(),
                at(i.sent).into(),
                at(last).into(),
                sends.into(),
                at(last + 7 * 24 * 3_600_000).into(),
                i.opened.map(at).into(),
                accepted.map(|a| a.0).into(),
                accepted.map(|a| a.1).into(),
                Some(inviter.id).into(),
                i.opened.map(at).into(),
                accepted.map(|a| a.0).into(),
                accepted.map(|a| a.1).into(),
            ],
        )
        .await?;
        for (k, when) in std::iter::once(i.sent).chain(i.resent).enumerate() {
            logs.event(
                wr,
                Event {
                    id: derived(when, i.id.as_u128() ^ ((k as u128 + 1) << 64)),
                    org: org.id,
                    kind: "INVITATION_SENT",
                    actor: Some(inviter.id),
                    project: None,
                    summary: format!("Demo User {} invited {}", inviter.n, i.email),
                    data: json!({
                        "invitationId": InvitationId(i.id).to_string(),
                        "email": i.email,
                        "role": "MEMBER",
                        "surface": i.surface,
                        "sendCount": k + 1,
                    }),
                    at: when,
                },
            )
            .await?;
        }
        let credit = |actor, action, at| Credit {
            org: Some(org.id),
            actor,
            action,
            resource: ("invitation", i.id),
            signup: None,
            at,
        };
        logs.credit(wr, credit(inviter.id, "invited", i.sent))
            .await?;
        if let Some((when, u)) = i.accepted {
            let user = &w.users[u];
            logs.credit(wr, credit(user.id, "accepted", when)).await?;
            logs.event(
                wr,
                Event {
                    id: derived(when, i.id.as_u128() ^ (7 << 64)),
                    org: org.id,
                    kind: "INVITATION_ACCEPTED",
                    actor: Some(user.id),
                    project: None,
                    summary: format!(
                        "Demo User {} accepted the invitation to {}",
                        user.n, org.name
                    ),
                    data: json!({ "invitationId": InvitationId(i.id).to_string() }),
                    at: when,
                },
            )
            .await?;
        }
    }
    t.done(wr, out).await?;

    // After every invitation is in: a send references its invitation.
    let mut sends = Table::new(
        "invitation_sends",
        &["id", "invitation_id", "sender_user_id", "sent_at"],
    );
    for i in &w.invitations {
        for (k, when) in std::iter::once(i.sent).chain(i.resent).enumerate() {
            sends
                .push(
                    wr,
                    vec![
                        derived(when, i.id.as_u128() ^ (k as u128 + 1)).into(),
                        i.id.into(),
                        w.users[i.inviter].id.into(),
                        at(when).into(),
                    ],
                )
                .await?;
        }
    }
    sends.done(wr, out).await?;

    // Viral signups are credited in the attribution log like the server does it.
    for u in &w.users {
        let Some(by) = u.invited_by else { continue };
        let resource = match u.source.stored() {
            "invite" => ("invitation", u.via_token.expect("invite token")),
            "share" => ("shared_link", u.via_token.expect("link")),
            _ => ("referral_code", w.users[by].id),
        };
        logs.credit(
            wr,
            Credit {
                org: u.attributed_org.map(|o| w.orgs[o].id),
                actor: w.users[by].id,
                action: "signed_up",
                resource,
                signup: Some(u.id),
                at: u.created,
            },
        )
        .await?;
    }
    Ok(())
}
