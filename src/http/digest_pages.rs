//! `/digest/unsubscribe/{token}`: leaving (and rejoining) the weekly digest without
//! signing in. Opening the link only asks (mail scanners open links too); the button, or a
//! mail client's one-click `List-Unsubscribe-Post`, unsubscribes. The token in the path is
//! the credential, so the form needs no CSRF value: another site cannot know it.
use axum::{
    extract::{Extension, Path, State},
    response::{IntoResponse, Response},
    Form,
};
use maud::html;

use super::{
    pages::{internal, page, unsubscribe_refused, UnsubscribeForm},
    AppState,
};
use crate::domain::{digest, ratelimit::Client};

/// `GET /digest/unsubscribe/{token}`: asks to confirm.
pub async fn confirm(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
) -> Response {
    let svc = &app.svc;
    let user = match digest::verify_unsubscribe(svc, &client, &token).await {
        Ok(u) => u,
        Err(e) => return unsubscribe_refused(e, "digest"),
    };
    let out = match digest::is_opted_out(svc, user.id).await {
        Ok(o) => o,
        Err(e) => return internal(e),
    };
    page(
        "Weekly digest",
        html! {
            h1 { "Weekly growth digest" }
            @if out {
                p.ok { (user.email) " does not get the weekly digest." }
                form method="post" { input type="hidden" name="action" value="resubscribe"; button type="submit" { "Send it to me again" } }
            } @else {
                p { "Stop sending the weekly growth digest to " strong { (user.email) } "?" }
                form method="post" { input type="hidden" name="action" value="unsubscribe"; button type="submit" { "Unsubscribe" } }
            }
        },
    )
    .into_response()
}

/// `POST /digest/unsubscribe/{token}`.
pub async fn unsubscribe(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
    Form(f): Form<UnsubscribeForm>,
) -> Response {
    let svc = &app.svc;
    let again = f.resubscribe();
    let result = if again {
        digest::resubscribe(svc, &client, &token).await
    } else {
        digest::unsubscribe(svc, &client, &token).await
    };
    match result {
        Ok(user) => page(
            "Weekly digest",
            html! {
                h1 { "Weekly growth digest" }
                @if again {
                    p.ok { (user.email) " gets the weekly digest again." }
                } @else {
                    p.ok { (user.email) " is unsubscribed. No more weekly digests." }
                    form method="post" { input type="hidden" name="action" value="resubscribe"; button type="submit" { "Undo" } }
                }
            },
        )
        .into_response(),
        Err(e) => unsubscribe_refused(e, "digest"),
    }
}
