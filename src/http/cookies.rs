//! The first-party cookies of the pages (`kf_ref`, `kf_vid`), read and written with
//! `axum-extra`'s cookie support. The API never uses cookies (bearer tokens only).
use axum::http::{header, HeaderMap, HeaderValue};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

/// Adds a `Set-Cookie` for a first-party cookie: `HttpOnly`, `SameSite=Lax`, path `/`, and
/// `Secure` when the server's public URL is https (so the browser never sends it in clear).
pub fn set(
    headers: &mut HeaderMap,
    name: &str,
    value: String,
    max_age_secs: i64,
    public_url: &str,
) {
    let cookie = Cookie::build((name.to_string(), value))
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(public_url.starts_with("https://"))
        .build();
    // Names are constants and values come from ids and codes the server made, which the
    // cookie encoding keeps to header-safe characters.
    if let Ok(v) = HeaderValue::from_str(&cookie.encoded().to_string()) {
        headers.append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_behind_https_and_read_back() {
        let mut h = HeaderMap::new();
        set(
            &mut h,
            "kf_vid",
            "v_1".into(),
            60,
            "https://app.example.com",
        );
        let text = h[header::SET_COOKIE].to_str().unwrap();
        for part in [
            "kf_vid=v_1",
            "Max-Age=60",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        let mut plain = HeaderMap::new();
        set(
            &mut plain,
            "kf_vid",
            "v_1".into(),
            60,
            "http://127.0.0.1:8080",
        );
        assert!(!plain[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Secure"));

        let mut req = HeaderMap::new();
        req.insert(header::COOKIE, "a=1; kf_vid=v_2; b=3".parse().unwrap());
        assert_eq!(read(&req, "kf_vid").as_deref(), Some("v_2"));
        assert_eq!(read(&req, "nope"), None);
    }
}
