//! The batched notification email, rendered when sent: what is still unread of its batch,
//! and an unsubscribe link that works without signing in.
use maud::html;

use super::Rendered;
use crate::domain::{identity::clean_name, notifications::email, Services};
use entity::emails;

/// The message, or None when nothing of the batch is unread any more (or email was turned
/// off, or the account is gone).
pub(super) async fn render(
    svc: &Services,
    row: &emails::Model,
) -> anyhow::Result<Option<Rendered>> {
    let Some((user, items)) = email::batch(svc, row.subject_id).await? else {
        return Ok(None);
    };
    let unsubscribe = email::unsubscribe_link(svc, user.id);
    let n = items.len();
    let subject = if n == 1 {
        items[0].summary.clone()
    } else {
        format!("{n} new notifications")
    };
    let name = clean_name(&user.name);
    let mut text = format!("Hi {name}, here is what happened since we last wrote:\n\n");
    for i in &items {
        text.push_str(&format!(
            "- {} ({})\n",
            i.summary,
            i.created_at.format("%B %-d, %H:%M UTC")
        ));
    }
    text.push_str(&format!(
        "\nStop these emails: {unsubscribe}\n(Choose which notifications you get in your notification preferences.)\n"
    ));
    let html = html! {
        p { "Hi " (name) ", here is what happened since we last wrote:" }
        ul {
            @for i in &items {
                li { (i.summary) " " span style="color:#555" { "(" (i.created_at.format("%B %-d, %H:%M UTC").to_string()) ")" } }
            }
        }
        p style="color:#555;font-size:13px" { a href=(unsubscribe) { "Stop these emails" } }
    }
    .into_string();
    Ok(Some(Rendered {
        subject,
        text,
        html,
        unsubscribe: Some(unsubscribe),
    }))
}
