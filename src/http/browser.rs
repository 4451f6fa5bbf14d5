//! What the pages know about the browser: its CSRF cookie and, once signed in, its page
//! session cookie. The API never looks at either (it is bearer-only).
//!
//! CSRF protection is a signed double-submit: every page response makes sure the browser
//! holds a random `kf_csrf` cookie, every state-changing form carries HMAC(secret, cookie),
//! and a POST is refused unless the two match. Another site can make the browser send the
//! cookie, but it can neither read it nor compute the form value.
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use maud::html;

use super::{pages::page, AppState};
use crate::domain::{identity, tokens, DomainError, Services};

/// The cookie holding a page session token (`kfp_…`).
pub const SESSION_COOKIE: &str = "kf_session";
/// The cookie the CSRF tokens of forms are derived from.
pub const CSRF_COOKIE: &str = "kf_csrf";

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    super::cookies::read(headers, name)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, Secure when the public URL is
/// https. `max_age` None: removes the cookie.
pub fn set_cookie(svc: &Services, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut h = HeaderMap::new();
    super::cookies::set(
        &mut h,
        name,
        value.to_string(),
        max_age.unwrap_or(0),
        &svc.config.public_url,
    );
    h.remove(header::SET_COOKIE)
        .expect("cookie values are base64url")
}

/// The browser's CSRF cookie, as the page middleware found or made it.
#[derive(Clone, Debug)]
pub struct Csrf(String);

impl Csrf {
    /// The hidden form value for this browser.
    pub fn token(&self, svc: &Services) -> String {
        svc.keys.csrf_token(&self.0)
    }

    /// Refuses a form whose CSRF value is not this browser's (403 page).
    #[allow(clippy::result_large_err)]
    pub fn check(&self, svc: &Services, form_value: &str) -> Result<(), Response> {
        if svc.keys.verify_csrf(&self.0, form_value) {
            return Ok(());
        }
        Err((
            StatusCode::FORBIDDEN,
            page(
                "Form expired",
                html! {
                    h1 { "This form has expired" }
                    p.error { "The form was not sent from this site's page, or your browser dropped its cookies. Go back, reload the page and try again." }
                },
            ),
        )
            .into_response())
    }
}

/// Middleware of the page routes: makes sure the browser has a CSRF cookie (set on the
/// response when it was missing) and hands it to the handler as [`Csrf`].
pub async fn csrf_cookie(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|v| (16..=128).contains(&v.len()));
    let (value, fresh) = match existing {
        Some(v) => (v, false),
        None => (tokens::new_csrf_cookie(), true),
    };
    req.extensions_mut().insert(Csrf(value.clone()));
    let mut resp = next.run(req).await;
    if fresh {
        // A year: the value means nothing on its own, and a stable one keeps open tabs'
        // forms working.
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&app.svc, CSRF_COOKIE, &value, Some(365 * 86_400)),
        );
    }
    resp
}

/// The signed-in user of a page request and their session token, if the session cookie is
/// valid. A database failure counts as signed out (and is logged).
pub async fn signed_in(
    svc: &Services,
    headers: &HeaderMap,
) -> Option<(crate::domain::records::User, String)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match identity::authenticate_page(svc, &token).await {
        Ok(u) => Some((u, token)),
        Err(DomainError::Unauthenticated(_)) => None,
        Err(e) => {
            tracing::error!(error = ?e, "authenticating a page session failed");
            None
        }
    }
}

/// Where to go after signing in: only a path of this site (`/dashboard?…`), never another
/// origin (`//evil.example`, `https://…`), so the login page is no open redirect.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_string()
        }
        _ => "/dashboard".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/dashboard?org=x")), "/dashboard?org=x");
        assert_eq!(local_path(Some("/invite/abc")), "/invite/abc");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/a\nb",
        ] {
            assert_eq!(local_path(Some(bad)), "/dashboard", "{bad:?}");
        }
        assert_eq!(local_path(None), "/dashboard");
    }
}
