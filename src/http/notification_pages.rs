//! `/notifications/unsubscribe/{token}`: turning the notification email off (and on again)
//! without signing in. Opening the link only asks (mail scanners open links too); the
//! button unsubscribes. The token in the path is the credential, so the form needs no CSRF
//! value: another site cannot know it.
use axum::{
    extract::{Extension, Path, State},
    response::{IntoResponse, Response},
    Form,
};
use maud::html;

use super::{
    pages::{page, unsubscribe_refused, UnsubscribeForm},
    AppState,
};
use crate::domain::{notifications::email, ratelimit::Client};

/// `GET /notifications/unsubscribe/{token}`: asks to confirm.
pub async fn confirm(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
) -> Response {
    let (user, prefs) = match email::verify_unsubscribe(&app.svc, &client, &token).await {
        Ok(u) => u,
        Err(e) => return unsubscribe_refused(e, "notification"),
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

/// `POST /notifications/unsubscribe/{token}`.
pub async fn unsubscribe(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
    Form(f): Form<UnsubscribeForm>,
) -> Response {
    let again = f.resubscribe();
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
        Err(e) => unsubscribe_refused(e, "notification"),
    }
}
