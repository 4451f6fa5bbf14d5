//! Account emails: address verification, password reset, confirming a new address. Like
//! every email they are rendered at send time from the `email_tokens` row, so the link
//! exists only in the message.
use maud::html;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Rendered;
use crate::domain::{accounts, Services};
use entity::{email_tokens, email_tokens::Purpose, emails, users};

/// The message of an account email, or None when there is nothing to send any more (the
/// link was used or expired, the account is gone, or a reset was asked for an address
/// without an account: that request is answered like any other but sends nothing).
pub(super) async fn render(
    svc: &Services,
    email: &emails::Model,
) -> anyhow::Result<Option<Rendered>> {
    let db = &svc.db.read;
    let Some(row) = email_tokens::Entity::find_by_id(email.subject_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if accounts::usable(&row, svc.now()).is_err() {
        return Ok(None);
    }
    let Some(user_id) = row.user_id else {
        return Ok(None);
    };
    let Some(user) = users::Entity::find_by_id(user_id)
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let link = accounts::link(svc, &row);
    let name = crate::domain::identity::clean_name(&user.name);
    let (subject, intro, action, validity) = match row.purpose {
        Purpose::VerifyEmail => (
            "Confirm your email address".to_string(),
            format!("Hi {name}, please confirm that {} is your email address.", row.email),
            "Confirm my address",
            "This link works for 48 hours.",
        ),
        Purpose::ChangeEmail => (
            "Confirm your new email address".to_string(),
            format!(
                "Hi {name}, you asked to use {} for your account. Confirm it to make the change.",
                row.email
            ),
            "Use this address",
            "This link works for 24 hours. Until you open it, your account keeps its current address.",
        ),
        Purpose::ResetPassword => (
            "Reset your password".to_string(),
            format!("Hi {name}, someone (hopefully you) asked to reset the password of your account."),
            "Choose a new password",
            "This link works for one hour and only once. Using it signs you out everywhere.",
        ),
    };
    let text = format!(
        "{intro}\n\n{action}:\n{link}\n\n{validity} If you did not ask for this, you can ignore this email.\n"
    );
    let html = html! {
        p { (intro) }
        p { a href=(link) style="display:inline-block;padding:10px 16px;background:#4f46e5;color:#fff;border-radius:6px;text-decoration:none" { (action) } }
        p style="color:#555" { "Or open this link: " a href=(link) { (link) } }
        p style="color:#555" { (validity) " If you did not ask for this, you can ignore this email." }
    }
    .into_string();
    Ok(Some(Rendered {
        subject,
        text,
        html,
    }))
}
