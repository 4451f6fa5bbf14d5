//! The pages account emails link to. Each calls the same domain operation as its GraphQL
//! mutation (`verifyEmail`, `resetPassword`), so the rules and limits are the same.
use axum::{
    extract::{Extension, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::html;

use super::{
    pages::{internal, page},
    AppState,
};
use crate::domain::{accounts, ratelimit::Client, DomainError};

/// A refusal the visitor can read (a bad, used or expired link), or the internal page.
fn refused(e: DomainError) -> Response {
    let status = match e {
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::TokenExpired | DomainError::TokenUsed => StatusCode::GONE,
        DomainError::EmailTaken => StatusCode::CONFLICT,
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

/// `GET /verify-email/{token}`: the link of a verification email. Opening it is the proof,
/// so it verifies at once (no second click).
pub async fn verify_email(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(token): Path<String>,
) -> Response {
    match accounts::verify_email(&app.svc, &client, &token).await {
        Ok(v) => page(
            "Address confirmed",
            html! {
                h1 { "Thanks, " (v.user.name) }
                p.ok { (v.user.email) " is confirmed." }
                @if let Some((org, _)) = &v.joined {
                    p { "You joined " strong { (org.name) } ". Open the app to get started." }
                }
            },
        )
        .into_response(),
        Err(e) => refused(e),
    }
}
