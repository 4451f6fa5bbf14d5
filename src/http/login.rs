//! Signing in to the pages: `GET/POST /login` and `POST /logout`. The credential check is
//! `logIn`'s (same limits); the session is a page session in an HttpOnly cookie.
use axum::{
    extract::{Extension, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use maud::html;
use serde::Deserialize;

use super::{
    browser::{self, Csrf, SESSION_COOKIE},
    pages::{internal, page},
    AppState,
};
use crate::domain::{identity, ratelimit::Client, DomainError, Services};

/// `?next=` of the login page.
#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_page(
    svc: &Services,
    csrf: &Csrf,
    email: &str,
    next: &str,
    error: Option<&str>,
) -> axum::response::Html<String> {
    page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf.token(svc));
                input type="hidden" name="next" value=(next);
                label for="email" { "Email" }
                input id="email" name="email" type="email" value=(email) required autocomplete="username";
                label for="password" { "Password" }
                input id="password" name="password" type="password" required autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
            p.muted { "No account yet? " a href="/signup" { "Sign up" } ". Forgot your password? Ask for a reset from the app." }
        },
    )
}

/// `GET /login`: the sign-in form (signed-in browsers go straight on to `next`).
pub async fn form(
    State(app): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = browser::local_path(q.next.as_deref());
    if browser::signed_in(&app.svc, &headers).await.is_some() {
        return Redirect::to(&next).into_response();
    }
    login_page(&app.svc, &csrf, "", &next, None).into_response()
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// Signs the browser in: the session cookie and a 303 to `next`.
pub fn signed_in_redirect(svc: &Services, token: &str, next: &str) -> Response {
    let mut resp = Redirect::to(next).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        browser::set_cookie(
            svc,
            SESSION_COOKIE,
            token,
            Some(svc.config.session_ttl_days * 86_400),
        ),
    );
    resp
}

/// `POST /login`.
pub async fn submit(
    State(app): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    Extension(client): Extension<Client>,
    Form(f): Form<LoginForm>,
) -> Response {
    let svc = &app.svc;
    if let Err(r) = csrf.check(svc, &f.csrf) {
        return r;
    }
    let next = browser::local_path(f.next.as_deref());
    match identity::log_in_page(svc, &client, &f.email, &f.password).await {
        Ok((token, _)) => signed_in_redirect(svc, &token, &next),
        Err(e @ (DomainError::Internal(_) | DomainError::RateLimited { .. })) => internal(e),
        Err(e) => (
            StatusCode::UNAUTHORIZED,
            login_page(svc, &csrf, &f.email, &next, Some(&e.to_string())),
        )
            .into_response(),
    }
}

/// The sign-out form.
#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the page session and removes the cookie.
pub async fn logout(
    State(app): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    let svc = &app.svc;
    if let Err(r) = csrf.check(svc, &f.csrf) {
        return r;
    }
    if let Some(token) = browser::cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = identity::log_out(svc, &token).await {
            return internal(e);
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        browser::set_cookie(svc, SESSION_COOKIE, "", None),
    );
    resp
}
