//! The pages account emails link to. Each calls the same domain operation as its GraphQL
//! mutation (`verifyEmail`, `resetPassword`), so the rules and limits are the same.
use axum::{
    extract::{Extension, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Form,
};
use maud::html;
use serde::Deserialize;

use super::{
    browser::Csrf,
    pages::{internal, page},
    AppState,
};
use crate::domain::{accounts, identity, ratelimit::Client, DomainError, Services};

/// A refusal the visitor can read (a bad, used or expired link), or the internal page.
fn refused(e: DomainError) -> Response {
    let status = match e {
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::TokenExpired | DomainError::TokenUsed => StatusCode::GONE,
        DomainError::EmailTaken => StatusCode::CONFLICT,
        DomainError::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        other => return internal(other),
    };
    let text = match e {
        DomainError::NotFound(_) => "This link is not valid.".to_string(),
        other => other.to_string(),
    };
    (
        status,
        page(
            "Link not usable",
            html! { h1 { "This link cannot be used" } p.error { (text) } },
        ),
    )
        .into_response()
}

/// The confirmation form behind a verification link.
fn confirm_form(
    svc: &Services,
    csrf: &Csrf,
    token: &str,
    p: &accounts::confirm::Preview,
    error: Option<String>,
) -> Response {
    let change = p.purpose == crate::domain::records::EmailPurpose::ChangeEmail;
    page(
        "Confirm your email address",
        html! {
            h1 { "Confirm your email address" }
            @if let Some(e) = error { p.error { (e) } }
            @if change {
                p { "Confirming makes " strong { (p.email) } " the address of the account that uses "
                    (p.account_email) " now." }
            } @else {
                p { "Confirm that " strong { (p.email) } " is your address." }
            }
            @if let Some(j) = &p.joins {
                p { "Confirming also joins " strong { (identity::clean_name(&j.organization.name)) }
                    ", as invited by " (j.inviter) "." }
            }
            form method="post" action=(format!("{}/verify-email/{token}", svc.config.public_url)) {
                input type="hidden" name="csrf" value=(csrf.token(svc));
                label for="password" { "The account's password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Confirm" }
            }
            p.muted { "If you did not ask for this, close this page: nothing changes unless you confirm." }
        },
    )
    .into_response()
}

/// `GET /verify-email/{token}`: the page behind a verification email's link. Opening it
/// uses nothing (mail scanners open links too): it says what confirming does, and the
/// form asks for the account's password, because the mailbox alone does not prove who
/// made the account (`accounts::confirm`).
pub async fn verify_email_form(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    Path(token): Path<String>,
) -> Response {
    match accounts::confirm::preview(&app.svc, &client, &token).await {
        Ok(p) => confirm_form(&app.svc, &csrf, &token, &p, None),
        Err(e) => refused(e),
    }
}

/// The confirmation form.
#[derive(Deserialize)]
pub struct ConfirmForm {
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /verify-email/{token}`: confirms (the same operation as `verifyEmail`).
pub async fn verify_email(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    Path(token): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    if let Err(r) = csrf.check(&app.svc, &f.csrf) {
        return r;
    }
    let holder = accounts::confirm::Holder::Password(&f.password);
    match accounts::verify_email(&app.svc, &client, &token, holder, false).await {
        Ok(v) => page(
            "Address confirmed",
            html! {
                h1 { "Thanks, " (v.user.name) }
                p.ok { (v.user.email) " is confirmed." }
                @if let Some((org, _)) = &v.joined {
                    p { "You joined " strong { (org.name) } ". Log in to the app to get started (sessions started before this were signed out)." }
                }
            },
        )
        .into_response(),
        Err(e @ (DomainError::InvalidCredentials | DomainError::InvalidInput { .. })) => {
            let status = if matches!(e, DomainError::InvalidCredentials) {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            match accounts::confirm::preview(&app.svc, &client, &token).await {
                Ok(p) => {
                    let message = match e {
                        DomainError::InvalidCredentials => {
                            "That is not the account's password.".to_string()
                        }
                        other => other.to_string(),
                    };
                    let mut r = confirm_form(&app.svc, &csrf, &token, &p, Some(message));
                    *r.status_mut() = status;
                    r
                }
                Err(e) => refused(e),
            }
        }
        Err(e) => refused(e),
    }
}

fn reset_form(svc: &Services, csrf: &Csrf, token: &str, error: Option<String>) -> Response {
    let public_url = &svc.config.public_url;
    page(
        "Choose a new password",
        html! {
            h1 { "Choose a new password" }
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action=(format!("{public_url}/reset-password/{token}")) {
                input type="hidden" name="csrf" value=(csrf.token(svc));
                label for="password" { "New password (at least 10 characters)" }
                input id="password" name="password" type="password" minlength="10" required;
                button type="submit" { "Set password" }
            }
            p.muted { "Setting it signs you out everywhere." }
        },
    )
    .into_response()
}

/// `GET /reset-password/{token}`: the form behind a reset email's link. Opening it uses
/// nothing (mail scanners open links too); submitting it does.
pub async fn reset_password_form(
    State(app): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    Path(token): Path<String>,
) -> Response {
    reset_form(&app.svc, &csrf, &token, None)
}

/// The reset form.
#[derive(Deserialize)]
pub struct ResetForm {
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /reset-password/{token}`.
pub async fn reset_password(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    Path(token): Path<String>,
    Form(f): Form<ResetForm>,
) -> Response {
    if let Err(r) = csrf.check(&app.svc, &f.csrf) {
        return r;
    }
    match accounts::passwords::reset_password(&app.svc, &client, &token, &f.password).await {
        Ok(s) => page(
            "Password changed",
            html! {
                h1 { "Your password was changed" }
                p.ok { "You are signed out everywhere. Log in with " (s.user.email) " and your new password." }
            },
        )
        .into_response(),
        Err(DomainError::InvalidInput { message, .. }) => {
            let mut r = reset_form(&app.svc, &csrf, &token, Some(message));
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(e) => refused(e),
    }
}
