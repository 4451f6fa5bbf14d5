//! The weekly digest email, rendered at send time from its `digest_runs` row: last week
//! against the week before, a link to the dashboard for exactly that week, and an
//! unsubscribe link that works without signing in.
use maud::html;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use super::Rendered;
use crate::{
    domain::{digest, identity::clean_name, Services},
    rollups::PLATFORM,
};
use entity::{digest_runs, emails, organizations, users};

/// Rows of the email: label, JSON key, decimals (None: a count).
const ROWS: [(&str, &str, Option<usize>); 9] = [
    ("Signups", "signups", None),
    ("Viral coefficient K", "viral_coefficient", Some(3)),
    ("Invitations per user (i)", "invitations_per_user", Some(3)),
    (
        "Invitation conversion (c)",
        "invitation_conversion_rate",
        Some(3),
    ),
    ("Share coefficient", "share_coefficient", Some(3)),
    ("Invitations sent", "invitations_sent", None),
    ("Invitations accepted", "invitations_accepted", None),
    ("Shared links created", "links_created", None),
    ("Shared link visits", "visits", None),
];

fn show(v: &Value, digits: Option<usize>) -> String {
    match digits {
        Some(d) => format!("{:.d$}", v.as_f64().unwrap_or(0.0)),
        None => v.as_i64().unwrap_or(0).to_string(),
    }
}

fn change(now: &Value, before: &Value, digits: Option<usize>) -> String {
    let d = now.as_f64().unwrap_or(0.0) - before.as_f64().unwrap_or(0.0);
    match digits {
        Some(n) => format!("{d:+.n$}"),
        None => format!("{:+}", d as i64),
    }
}

/// The message, or None when there is nothing to send any more (the account is gone or
/// opted out since, or the organization is being deleted).
pub(super) async fn render(
    svc: &Services,
    email: &emails::Model,
) -> anyhow::Result<Option<Rendered>> {
    let db = &svc.db.read;
    let Some(run) = digest_runs::Entity::find_by_id(email.subject_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(user) = users::Entity::find()
        .filter(users::Column::Email.eq(&email.recipient))
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if digest::is_opted_out(svc, user.id).await? {
        return Ok(None);
    }
    let scope_name = if run.scope_id == PLATFORM {
        "the platform".to_string()
    } else {
        match organizations::Entity::find_by_id(run.scope_id)
            .one(db)
            .await?
        {
            Some(o) if o.deletion_scheduled_for.is_none() && o.deleted_at.is_none() => {
                clean_name(&o.name)
            }
            _ => return Ok(None),
        }
    };
    let n = &run.numbers;
    let (this, prev) = (&n["this_week"], &n["previous_week"]);
    let dashboard = n["dashboard_url"].as_str().unwrap_or_default().to_string();
    let unsubscribe = digest::unsubscribe_link(svc, user.id);
    let week = run.week_start.clone();
    let subject = format!(
        "Growth of {scope_name}, week of {week}: {} signups, K {}",
        show(&this["signups"], None),
        show(&this["viral_coefficient"], Some(2))
    );
    let mut text = format!(
        "Hi {}, here is last week's growth of {scope_name} (the week starting Monday {week}, UTC) against the week before.\n\n",
        clean_name(&user.name)
    );
    for (label, key, digits) in ROWS {
        text.push_str(&format!(
            "{label}: {} (week before: {}, {})\n",
            show(&this[key], digits),
            show(&prev[key], digits),
            change(&this[key], &prev[key], digits)
        ));
    }
    text.push_str(&format!(
        "\nOpen the dashboard for this week:\n{dashboard}\n\nK counts the invite signups credited to the week's new members so far; it can still grow for a few weeks.\n\nYou get this because you are an admin or owner (or platform staff). Stop these emails: {unsubscribe}\n"
    ));
    let html = html! {
        p { "Hi " (clean_name(&user.name)) ", here is last week's growth of " strong { (scope_name) } " (the week starting Monday " (week) ", UTC) against the week before." }
        table style="border-collapse:collapse" {
            tr { th style="text-align:left;padding:4px 10px" { "" } th style="text-align:right;padding:4px 10px" { "Last week" } th style="text-align:right;padding:4px 10px" { "Week before" } th style="text-align:right;padding:4px 10px" { "Change" } }
            @for (label, key, digits) in ROWS {
                tr {
                    td style="padding:4px 10px" { (label) }
                    td style="text-align:right;padding:4px 10px" { strong { (show(&this[key], digits)) } }
                    td style="text-align:right;padding:4px 10px;color:#555" { (show(&prev[key], digits)) }
                    td style="text-align:right;padding:4px 10px;color:#555" { (change(&this[key], &prev[key], digits)) }
                }
            }
        }
        p { a href=(dashboard) style="display:inline-block;padding:10px 16px;background:#3b528b;color:#fff;border-radius:6px;text-decoration:none" { "Open the dashboard" } }
        p style="color:#555;font-size:13px" { "K counts the invite signups credited to the week's new members so far; it can still grow for a few weeks." }
        p style="color:#555;font-size:13px" { "You get this because you are an admin or owner (or platform staff). " a href=(unsubscribe) { "Unsubscribe" } }
    }
    .into_string();
    Ok(Some(Rendered {
        subject,
        text,
        html,
        unsubscribe: Some(unsubscribe),
    }))
}
