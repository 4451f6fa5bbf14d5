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
    let name = crate::domain::identity::clean_name(&user.name);
    if row.purpose == Purpose::ChangeEmail {
        if let Some(notice) = address_taken(svc, &row, &user).await? {
            return Ok(Some(notice));
        }
    }
    let link = accounts::link(svc, &row);
    let (subject, intro, action, validity) = match row.purpose {
        Purpose::VerifyEmail => {
            let joins = accounts::confirm::waiting_join(db, svc.now(), &user).await?;
            let intro = match joins {
                // Whoever signed up may not be whoever reads this: say what the button does.
                Some(j) => format!(
                    "Hi {name}, an account for {} was created through a copied invitation link. Confirming verifies this address and also joins {} as invited by {}; it asks for the account's password. If you did not sign up, ignore this email: nothing happens unless you confirm.",
                    row.email,
                    crate::domain::identity::clean_name(&j.organization.name),
                    j.inviter,
                ),
                None => format!("Hi {name}, please confirm that {} is your email address.", row.email),
            };
            (
                "Confirm your email address".to_string(),
                intro,
                "Confirm my address",
                "This link works for 48 hours.",
            )
        }
        Purpose::ChangeEmail => (
            "Confirm your new email address".to_string(),
            format!(
                "Hi {name}, you asked to use {} for your account. Confirm it (with your password) to make the change.",
                row.email
            ),
            "Use this address",
            "This link works for 24 hours. Until you confirm, your account keeps its current address.",
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
        unsubscribe: None,
    }))
}

/// The notice sent instead of a confirmation link when the address asked for by
/// `changeEmail` already has an account: its owner learns someone tried, nothing changes,
/// and the requester's answer was the same as for a free address.
async fn address_taken(
    svc: &Services,
    row: &email_tokens::Model,
    requester: &users::Model,
) -> anyhow::Result<Option<Rendered>> {
    let owner = users::Entity::find()
        .filter(users::Column::Email.eq(row.email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .filter(users::Column::Id.ne(requester.id))
        .one(&svc.db.read)
        .await?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    let name = crate::domain::identity::clean_name(&owner.name);
    let intro = format!(
        "Hi {name}, someone signed in to another account asked to use {} as that account's address. It is already yours, so nothing changed: your account, its password and its sessions are as they were.",
        row.email
    );
    let after = "If it was you, sign in with this address instead. If it was not, you can ignore this email.";
    Ok(Some(Rendered {
        subject: "Someone tried to use your email address".into(),
        text: format!("{intro}\n\n{after}\n"),
        html: html! { p { (intro) } p style="color:#555" { (after) } }.into_string(),
        unsubscribe: None,
    }))
}
