//! `/notifications/unsubscribe/{token}`: turning the notification email off (and on again)
//! without signing in. Opening the link only asks (mail scanners open links too); the
//! button unsubscribes. The token in the path is the credential, so the form needs no CSRF
//! value: another site cannot know it.
use axum::{
    extract::{Extension, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Form,
};
use maud::html;
use serde::Deserialize;

use super::{
    pages::{internal, page},
    AppState,
};
use crate::domain::{notifications::email, ratelimit::Client, DomainError};

fn refused(e: DomainError) -> Response {
    match e {
        DomainError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            page(
                "Link not valid",
                html! { h1 { "This unsubscribe link is not valid" } p.muted { "Use the link of your most recent notification email." } },
            ),
        )
            .into_response(),
        DomainError::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            page("Too many requests", html! { h1 { "Too many requests" } p.muted { "Try again in a minute." } }),
        )
            .into_response(),
        other => internal(other),
    }
}

/// `GET /notifications/unsubscribe/{token}`: asks to confirm.
pub async fn confirm(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
) -> Response {
    let (user, prefs) = match email::verify_unsubscribe(&app.svc, &client, &token).await {
        Ok(u) => u,
        Err(e) => return refused(e),
    };
    page(
        "Notification email",
        html! {
            h1 { "Notification email" }
            @if prefs.email {
                p { "Stop emailing notifications to " strong { (user.email) } "?" }
                form method="post" { input type="hidden" name="action" value="unsubscribe"; button type="submit" { "Unsubscribe" } }
            } @else {
                p.ok { (user.email) " gets no notification email." }
                form method="post" { input type="hidden" name="action" value="resubscribe"; button type="submit" { "Email me again" } }
            }
        },
    )
    .into_response()
}

/// The confirmation form.
#[derive(Deserialize, Default)]
pub struct UnsubscribeForm {
    action: Option<String>,
}

/// `POST /notifications/unsubscribe/{token}`.
pub async fn unsubscribe(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
    Form(f): Form<UnsubscribeForm>,
) -> Response {
    let again = f.action.as_deref() == Some("resubscribe");
    match email::set_email(&app.svc, &client, &token, again).await {
        Ok(user) => page(
            "Notification email",
            html! {
                h1 { "Notification email" }
                @if again {
                    p.ok { (user.email) " gets notification email again." }
                } @else {
                    p.ok { (user.email) " is unsubscribed. No more notification email." }
                    form method="post" { input type="hidden" name="action" value="resubscribe"; button type="submit" { "Undo" } }
                }
            },
        )
        .into_response(),
        Err(e) => refused(e),
    }
}
