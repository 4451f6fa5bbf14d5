//! The default sign-up page (`KFACTOR_SIGNUP_URL` points elsewhere to use your own): the
//! same `signUp` as the API, with the attribution the link or the referral cookie carried.
use axum::{
    extract::{Extension, Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    Form,
};
use maud::html;
use serde::Deserialize;

use super::{
    browser::{cookie, Csrf},
    pages::{internal, page, REFERRAL_COOKIE, VISITOR_COOKIE},
    AppState,
};
use crate::domain::{
    identity::{self, SignUpInput},
    ratelimit::Client,
    DomainError, Services,
};

/// Query of the sign-up page.
#[derive(Deserialize, Default)]
pub struct SignUpQuery {
    invite: Option<String>,
    #[serde(rename = "ref")]
    referral: Option<String>,
    share: Option<String>,
    email: Option<String>,
    utm_source: Option<String>,
}

/// `GET /signup`: the default sign-up page (set `KFACTOR_SIGNUP_URL` to use your own).
pub async fn signup_form(
    State(app): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Query(q): Query<SignUpQuery>,
) -> Html<String> {
    let form = SignUpForm {
        name: String::new(),
        email: q.email.unwrap_or_default(),
        password: String::new(),
        invite: q.invite,
        referral: q.referral.or_else(|| cookie(&headers, REFERRAL_COOKIE)),
        share: q.share,
        utm_source: q.utm_source,
        csrf: String::new(),
    };
    signup_page(&app.svc, &csrf, &form, None)
}

fn signup_page(svc: &Services, csrf: &Csrf, f: &SignUpForm, error: Option<String>) -> Html<String> {
    let public_url = &svc.config.public_url;
    page(
        "Sign up",
        html! {
            h1 { "Create your account" }
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action=(format!("{public_url}/signup")) {
                input type="hidden" name="csrf" value=(csrf.token(svc));
                label for="name" { "Name" }
                input id="name" name="name" value=(f.name) required;
                label for="email" { "Email" }
                input id="email" name="email" type="email" value=(f.email) required;
                label for="password" { "Password (at least 10 characters)" }
                input id="password" name="password" type="password" minlength="10" required;
                @if let Some(v) = &f.invite { input type="hidden" name="invite" value=(v); }
                @if let Some(v) = &f.referral { input type="hidden" name="referral" value=(v); }
                @if let Some(v) = &f.share { input type="hidden" name="share" value=(v); }
                @if let Some(v) = &f.utm_source { input type="hidden" name="utm_source" value=(v); }
                button type="submit" { "Sign up" }
            }
        },
    )
}

/// The sign-up form.
#[derive(Deserialize)]
pub struct SignUpForm {
    name: String,
    email: String,
    password: String,
    invite: Option<String>,
    referral: Option<String>,
    share: Option<String>,
    utm_source: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// `POST /signup`.
pub async fn signup_submit(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Form(f): Form<SignUpForm>,
) -> Response {
    if let Err(r) = csrf.check(&app.svc, &f.csrf) {
        return r;
    }
    let input = SignUpInput {
        email: f.email.clone(),
        password: f.password.clone(),
        name: f.name.clone(),
        invite_token: f.invite.clone(),
        share_token: f.share.clone(),
        // A guest's comments made under this browser's visitor id become theirs.
        visitor_id: cookie(&headers, VISITOR_COOKIE),
        referral_code: f.referral.clone(),
        utm_source: f.utm_source.clone(),
        client,
    };
    match identity::sign_up(&app.svc, input).await {
        Ok(s) => page(
            "Welcome",
            html! {
                h1 { "Welcome, " (s.user.name) }
                @if let Some((org, _)) = &s.organization {
                    p.ok { "Your account is ready. You're in " strong { (org.name) } "." }
                } @else {
                    p.ok { "Your account is ready." }
                }
                // E.g. a copied invitation link: joining waits for the verification email.
                @if let Some(notice) = &s.notice { p { (notice.to_string()) } }
                p.muted { "Log in from the app with " (s.user.email) "." }
            },
        )
        .into_response(),
        Err(e @ (DomainError::Internal(_) | DomainError::RateLimited { .. })) => internal(e),
        Err(e) => {
            // A token or code that does not check out is dropped from the form, so the
            // next attempt signs up unattributed instead of failing again.
            let mut f = f;
            if let DomainError::InvalidInput { field, .. } = &e {
                match field.first().map(String::as_str) {
                    Some("inviteToken") => f.invite = None,
                    Some("referralCode") => f.referral = None,
                    Some("shareToken") => f.share = None,
                    _ => {}
                }
            }
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                signup_page(&app.svc, &csrf, &f, Some(e.to_string())),
            )
                .into_response()
        }
    }
}
