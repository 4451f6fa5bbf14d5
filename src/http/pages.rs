//! Server-rendered pages of the viral loop: the invitation landing page, the referral
//! redirect and a minimal sign-up page. No JavaScript build step; maud escapes everything.
use axum::{
    extract::{Extension, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use super::{
    browser::{cookie, Csrf},
    cookies, AppState,
};
use crate::domain::{
    identity,
    invitations::{self, Status},
    page::PageRequest,
    projects,
    ratelimit::Client,
    referrals,
    sharing::{self, Permission},
    DomainError,
};

/// The referral cookie `/r/{code}` sets; the sign-up page reads it.
pub const REFERRAL_COOKIE: &str = "kf_ref";

pub(super) fn page(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (maud::PreEscaped(CSS)) }
                }
                body { main { (body) } }
            }
        }
        .into_string(),
    )
}

const CSS: &str = "body{font:16px/1.5 system-ui,sans-serif;background:#f6f7fb;color:#1f2330;margin:0}
main{max-width:32rem;margin:4rem auto;background:#fff;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0001}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input{width:100%;padding:.55rem;border:1px solid #ccd;border-radius:6px;box-sizing:border-box;font:inherit}
button,.button{margin-top:1.2rem;padding:.6rem 1.1rem;background:#4f46e5;color:#fff;border:0;border-radius:6px;font:inherit;cursor:pointer;text-decoration:none;display:inline-block}
.muted{color:#667}.error{background:#fde8e8;color:#8a1c1c;padding:.6rem .8rem;border-radius:6px}.ok{background:#e6f6ec;color:#1d5e34;padding:.6rem .8rem;border-radius:6px}";

fn status_sentence(status: Status) -> Option<&'static str> {
    match status {
        Status::Pending => None,
        Status::Accepted => Some("This invitation has already been accepted."),
        Status::Expired => Some("This invitation has expired. Ask for a new one."),
        Status::Revoked => Some("This invitation was revoked."),
    }
}

/// `GET /invite/{token}`: who invited whom to what, with accept and sign-up actions. Counts
/// as opening the invitation.
pub async fn invitation(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let svc = &app.svc;
    let me = super::browser::signed_in(svc, &headers)
        .await
        .map(|(u, _)| u);
    let p = match invitations::preview(svc, &client, &token).await {
        Ok(p) => p,
        Err(DomainError::NotFound(_)) => {
            return (
                StatusCode::NOT_FOUND,
                page("Invitation not found", html! {
                    h1 { "This invitation link is not valid" }
                    p.muted { "It may have been replaced by a newer invitation. Check your email for the latest one, or ask for a new invitation." }
                }),
            )
                .into_response()
        }
        Err(e) => return internal(e),
    };
    let status = invitations::status(&p.invitation, svc.now());
    let role = p.invitation.role.as_str();
    let signup = svc
        .config
        .signup_link(&[("invite", &token), ("email", &p.invitation.email)]);
    page(
        &format!("Join {}", p.organization.name),
        html! {
            h1 { (p.inviter.name) " invited you to join " (p.organization.name) }
            p { "You were invited as " strong { (role) } " with " strong { (p.invitation.email) } "." }
            @if let Some(s) = status_sentence(status) {
                p.error { (s) }
            } @else {
                p.muted { "The invitation expires on " (p.invitation.expires_at.format("%B %-d, %Y at %H:%M UTC")) "." }
                a.button href=(signup) { "Sign up and join" }
                h2 style="font-size:1.1rem;margin-top:2rem" { "Already have an account?" }
                @if let Some(me) = &me {
                    form method="post" action=(format!("{}/invite/{token}/accept", svc.config.public_url)) {
                        input type="hidden" name="csrf" value=(csrf.token(svc));
                        p { "You are signed in as " strong { (me.email) } "." }
                        button type="submit" { "Accept as " (me.name) }
                    }
                    p.muted { "Not you? Sign in with the invited account below." }
                }
                form method="post" action=(format!("{}/invite/{token}/accept", svc.config.public_url)) {
                    input type="hidden" name="csrf" value=(csrf.token(svc));
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" value=(p.invitation.email) required;
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" required;
                    button type="submit" { "Log in and accept" }
                }
            }
        },
    )
    .into_response()
}

/// The log-in-and-accept form.
#[derive(Deserialize)]
pub struct AcceptForm {
    /// Absent: accept as the signed-in user.
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// `POST /invite/{token}/accept`.
/// With email and password it checks them (the log-in limits apply) and signs the browser
/// in; without, it accepts as the browser's signed-in user.
pub async fn accept_invitation(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<AcceptForm>,
) -> Response {
    let svc = &app.svc;
    if let Err(r) = csrf.check(svc, &form.csrf) {
        return r;
    }
    let result = async {
        let (user, new_session) = match (&form.email, &form.password) {
            (Some(email), Some(password)) => {
                let user = identity::verify_credentials(svc, &client, email, password).await?;
                (user, true)
            }
            _ => match super::browser::signed_in(svc, &headers).await {
                Some((user, _)) => (user, false),
                None => {
                    return Err(DomainError::Unauthenticated(
                        "Sign in (or enter your email and password) to accept.",
                    ))
                }
            },
        };
        invitations::accept(svc, &client, &user, &token).await?;
        let session = match new_session {
            true => Some(identity::start_page_session(svc, &user, &client).await?),
            false => None,
        };
        Ok::<_, DomainError>(session)
    }
    .await;
    match result {
        Ok(session) => {
            let mut resp = page(
                "Welcome",
                html! {
                    h1 { "You're in" }
                    p.ok { "You joined the organization. Open the app to get started." }
                    p { a href="/dashboard" { "Open the growth dashboard" } }
                },
            )
            .into_response();
            if let Some(t) = session {
                resp.headers_mut().append(
                    header::SET_COOKIE,
                    super::browser::set_cookie(
                        svc,
                        super::browser::SESSION_COOKIE,
                        &t,
                        Some(svc.config.session_ttl_days * 86_400),
                    ),
                );
            }
            resp
        }
        Err(e @ (DomainError::Internal(_) | DomainError::RateLimited { .. })) => internal(e),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            page(
                "Could not accept",
                html! {
                    h1 { "Could not accept the invitation" }
                    p.error { (e.to_string()) }
                    a href=(format!("/invite/{token}")) { "Back to the invitation" }
                },
            ),
        )
            .into_response(),
    }
}

/// `GET /r/{code}`: remembers the referrer in a first-party cookie and sends the visitor to
/// the sign-up page.
pub async fn referral(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Path(code): Path<String>,
) -> Response {
    let svc = &app.svc;
    let signup = svc.config.signup_url();
    match referrals::open(svc, &client, &code).await {
        Ok(owner) => {
            let mut resp = Redirect::to(&svc.config.signup_link(&[("ref", &owner.referral_code)]))
                .into_response();
            cookies::set(
                resp.headers_mut(),
                REFERRAL_COOKIE,
                owner.referral_code,
                svc.config.referral_cookie_days * 86_400,
                &svc.config.public_url,
            );
            resp
        }
        // An unknown code still lands on the sign-up page, unattributed.
        Err(DomainError::InvalidInput { .. }) => Redirect::to(&signup).into_response(),
        Err(e) => internal(e),
    }
}

/// The answer of an email's unsubscribe page when its token does not verify (404) or the
/// visitor must slow down or something broke ([`internal`]). `email` names the email, as in
/// "your most recent digest email".
pub(super) fn unsubscribe_refused(e: DomainError, email: &str) -> Response {
    match e {
        DomainError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            page(
                "Link not valid",
                html! { h1 { "This unsubscribe link is not valid" } p.muted { "Use the link of your most recent " (email) " email." } },
            ),
        )
            .into_response(),
        other => internal(other),
    }
}

/// The form of an unsubscribe page (or RFC 8058's `List-Unsubscribe=One-Click`):
/// `action=resubscribe` undoes, anything else unsubscribes.
#[derive(Deserialize, Default)]
pub struct UnsubscribeForm {
    action: Option<String>,
}

impl UnsubscribeForm {
    /// Whether the visitor asked to be emailed again.
    pub fn resubscribe(&self) -> bool {
        self.action.as_deref() == Some("resubscribe")
    }
}

/// The page for what the visitor cannot fix: a rate limit (429 with `Retry-After`) or an
/// internal error (logged, answered without detail).
pub(super) fn internal(e: DomainError) -> Response {
    if let DomainError::RateLimited {
        retry_after_seconds,
    } = e
    {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            page(
                "Slow down",
                html! { h1 { "Too many requests" } p { (e.to_string()) } },
            ),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, retry_after_seconds.into());
        return r;
    }
    tracing::error!(error = ?e, "page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        page(
            "Error",
            html! { h1 { "Something went wrong" } p { "Try again in a moment." } },
        ),
    )
        .into_response()
}

/// The first-party visitor cookie: a guest's stable visitor id.
pub const VISITOR_COOKIE: &str = "kf_vid";

/// The visitor id of the browser, and whether it is new (then the page sets the cookie).
fn visitor_cookie(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, VISITOR_COOKIE).filter(|v| !v.is_empty() && v.len() <= 128) {
        Some(v) => (v, false),
        None => (format!("v_{}", uuid::Uuid::new_v4().simple()), true),
    }
}

/// A year: the visitor cookie outlives any one visit.
const VISITOR_COOKIE_MAX_AGE: i64 = 365 * 86_400;

fn link_error_page(e: DomainError) -> Response {
    let (status, title, text) = match e {
        DomainError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "Link not found",
            "This link is not valid.",
        ),
        DomainError::LinkExpired => (
            StatusCode::GONE,
            "Link expired",
            "This link has expired. Ask its owner for a new one.",
        ),
        DomainError::LinkRevoked => (
            StatusCode::GONE,
            "Link revoked",
            "This link was revoked by its owner.",
        ),
        DomainError::Unauthenticated(_) | DomainError::Forbidden => (
            StatusCode::FORBIDDEN,
            "Members only",
            "This link is only for members of its organization. Sign in to the app to open it.",
        ),
        other => return internal(other),
    };
    (
        status,
        page(title, html! { h1 { (title) } p.muted { (text) } }),
    )
        .into_response()
}

/// `GET /s/{token}`: the shared project for guests: content, comments, a comment form when
/// the link allows it, and a sign-up call to action carrying the token. Counts a visit.
pub async fn shared(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let svc = &app.svc;
    let (visitor, new_visitor) = visitor_cookie(&headers);
    let opened = match sharing::open(svc, &client, &token, None, Some(&visitor)).await {
        Ok(o) => o,
        Err(e) => return link_error_page(e),
    };
    let comments = match projects::comments(
        &svc.db.read,
        &opened.project,
        PageRequest {
            first: 100,
            after: None,
            count: true,
        },
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let authors = match identity::users_by_ids(
        &svc.db.read,
        &comments
            .items
            .iter()
            .filter_map(|c| c.author_user_id)
            .collect::<Vec<_>>(),
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let author = |c: &crate::domain::records::Comment| {
        c.author_user_id
            .and_then(|id| authors.iter().find(|u| u.id == id).map(|u| u.name.clone()))
            .or_else(|| c.guest_name.clone())
            .unwrap_or_else(|| "Someone".into())
    };
    let permission = opened.permission();
    let signup = svc.config.signup_link(&[("share", &token)]);
    let mut resp = page(
        &opened.project.name,
        html! {
            p.muted { (opened.creator.name) " shared this from " strong { (opened.organization.name) } }
            h1 { (opened.project.name) }
            div style="white-space:pre-wrap;border-left:3px solid #ccd;padding-left:1rem" { (opened.project.content) }
            h2 style="font-size:1.1rem;margin-top:2rem" { "Comments (" (comments.total.unwrap_or(0)) ")" }
            @for c in &comments.items {
                div style="margin:.6rem 0" { strong { (author(c)) } " · " span.muted { (c.created_at.format("%b %-d, %H:%M")) } div { (c.body) } }
            }
            @if permission >= Permission::Comment {
                form method="post" action=(format!("{}/s/{token}/comments", svc.config.public_url)) {
                    input type="hidden" name="csrf" value=(csrf.token(svc));
                    label for="guest_name" { "Your name" }
                    input id="guest_name" name="guest_name" required maxlength="100";
                    label for="body" { "Comment" }
                    textarea id="body" name="body" required rows="3" style="width:100%;box-sizing:border-box" {}
                    button type="submit" { "Comment" }
                }
            }
            p style="margin-top:2rem" { a.button href=(signup) { "Sign up to collaborate" } }
        },
    )
    .into_response();
    if new_visitor {
        cookies::set(
            resp.headers_mut(),
            VISITOR_COOKIE,
            visitor,
            VISITOR_COOKIE_MAX_AGE,
            &svc.config.public_url,
        );
    }
    resp
}

/// The guest comment form.
#[derive(Deserialize)]
pub struct CommentForm {
    guest_name: String,
    body: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /s/{token}/comments`: a guest comments from the page, then sees it.
pub async fn shared_comment(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<CommentForm>,
) -> Response {
    if let Err(r) = csrf.check(&app.svc, &f.csrf) {
        return r;
    }
    let (visitor, _) = visitor_cookie(&headers);
    match sharing::guest_comment(&app.svc, &client, &token, &f.body, &f.guest_name, Some(&visitor), None).await {
        Ok(_) => Redirect::to(&format!("/s/{token}")).into_response(),
        Err(e @ (DomainError::InvalidInput { .. } | DomainError::PermissionDenied(_))) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            page("Could not comment", html! { h1 { "Could not add the comment" } p.error { (e.to_string()) } a href=(format!("/s/{token}")) { "Back" } }),
        )
            .into_response(),
        Err(e) => link_error_page(e),
    }
}
