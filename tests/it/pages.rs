//! The pages' own sign-in (a cookie the API never accepts), CSRF on every form, and the
//! growth dashboard: the numbers the API gives for the same window, charts with their
//! numbers, the CSV, who may see what, and the upgrade prompt.
use reqwest::{header, redirect::Policy};
use serde_json::json;

use crate::{
    accounts::PASSWORD,
    growth::{invite, no_limits, sign_up_with},
    helpers::{
        browser::{attr_after, Browser},
        error_codes, spawn_with, TestApp, TestUser,
    },
};

/// Ana (OWNER) invited Bo and Cy; Bo signed up through his invitation: K = 1 conversion ÷ a
/// cohort of two = 0.5.
async fn world(app: &TestApp) -> (TestUser, TestUser) {
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo_token = invite(app, &ana, &ana.org_id, "bo@example.com", "settings").await;
    invite(app, &ana, &ana.org_id, "cy@example.com", "settings").await;
    let bo = sign_up_with(
        app,
        "Bo",
        "bo@example.com",
        json!({ "inviteToken": bo_token }),
    )
    .await;
    (ana, bo)
}

fn tile(html: &str, id: &str) -> f64 {
    attr_after(html, &format!("id=\"{id}\""), "data-value")
        .unwrap_or_else(|| panic!("no tile {id} in {html}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_page_session_is_a_cookie_that_the_api_never_accepts() {
    let app = spawn_with(no_limits).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut b = Browser::new(&app);

    let (status, _, location) = b.get("/dashboard?range=4w").await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/login?next=%2Fdashboard%3Frange%3D4w")
    );

    // No CSRF value, or another browser's: refused before the password is looked at.
    let (status, html, _) = b
        .post(
            "/login",
            &[("email", "ana@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("This form has expired"));
    let (other_cookie, other_token) = app.csrf();
    assert!(other_cookie.starts_with("kf_csrf="));
    let (status, _, _) = b
        .post(
            "/login",
            &[
                ("email", "ana@example.com"),
                ("password", PASSWORD),
                ("csrf", &other_token),
            ],
        )
        .await;
    assert_eq!(status, 403, "a CSRF value only works with its own cookie");

    let (status, html, _) = b.log_in("ana@example.com", "wrong password!").await;
    assert_eq!(status, 401);
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(b.cookie("kf_session").is_none());

    let (status, _, location) = b.log_in("ana@example.com", PASSWORD).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/dashboard"));
    let session = b.cookie("kf_session").expect("session cookie");
    assert!(session.starts_with("kfp_"));

    // Set-Cookie flags, as a browser would see them.
    let mut fresh = Browser::new(&app);
    let csrf = fresh.csrf_of("/login").await;
    let resp = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", app.url))
        .header(
            header::COOKIE,
            format!("kf_csrf={}", fresh.cookie("kf_csrf").unwrap()),
        )
        .form(&[
            ("email", "ana@example.com"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    let set = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "http PUBLIC_URL: no Secure flag");

    // The cookie is no API credential: not as a cookie, not as a bearer token.
    let resp = app
        .http
        .post(format!("{}/graphql", app.url))
        .header(header::COOKIE, format!("kf_session={session}"))
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["me"], serde_json::Value::Null, "{body}");
    let body = app.gql(Some(&session), "{ me { id } }", json!({})).await;
    assert_eq!(error_codes(&body), ["UNAUTHENTICATED"]);
    // And an API token is no page session.
    b.cookies.retain(|(k, _)| k != "kf_session");
    b.cookies.push(("kf_session".into(), ana.token.clone()));
    assert_eq!(b.get("/dashboard").await.0, 303);
    b.cookies.retain(|(k, _)| k != "kf_session");
    b.cookies.push(("kf_session".into(), session.clone()));

    let (status, html, _) = b.get("/dashboard").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Ana&#39;s workspace") || html.contains("Ana's workspace"),
        "{html}"
    );

    // The session shows in the API's session list (and ends with logOutAll like any other).
    let body = app
        .gql(Some(&ana.token), "{ me { sessions { id } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["me"]["sessions"].as_array().unwrap().len(),
        3,
        "{body}"
    );

    // Sign out: the cookie goes, and the session with it.
    let csrf = attr_after(&html, "name=\"csrf\"", "value").unwrap();
    let (status, _, location) = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    assert!(b.cookie("kf_session").is_none());
    b.cookies.push(("kf_session".into(), session));
    assert_eq!(
        b.get("/dashboard").await.0,
        303,
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn signing_in_from_the_page_shares_the_log_in_limits_and_never_redirects_off_site() {
    let app = spawn_with(|c| {
        c.safety.login_failures_per_address = kfactor::config::Rate::parse("2/15m").unwrap();
    })
    .await;
    app.sign_up("Ana", "ana@example.com").await;
    let mut b = Browser::new(&app);
    let csrf = b.csrf_of("/login").await;
    let form = |pw: &'static str, next: &'static str| {
        vec![
            ("email", "ana@example.com"),
            ("password", pw),
            ("next", next),
        ]
    };
    let mut f = form(PASSWORD, "//evil.example/phish");
    f.push(("csrf", &csrf));
    let (status, _, location) = b.post("/login", &f).await;
    assert_eq!((status, location.as_deref()), (303, Some("/dashboard")));
    for _ in 0..2 {
        let mut f = form("wrong password!", "/dashboard");
        f.push(("csrf", &csrf));
        assert_eq!(b.post("/login", &f).await.0, 401);
    }
    let mut f = form(PASSWORD, "/dashboard");
    f.push(("csrf", &csrf));
    let (status, html, _) = b.post("/login", &f).await;
    assert_eq!(status, 429, "{html}");
    // The API's logIn draws on the same budget.
    let (status, body) = app
        .post(
            None,
            "mutation { logIn(input: {email: \"ana@example.com\", password: \"correct horse battery\"}) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(error_codes(&body), ["RATE_LIMITED"], "{body}");
}

#[tokio::test]
async fn the_dashboard_shows_the_apis_numbers_for_the_window_it_names() {
    let app = spawn_with(no_limits).await;
    let (ana, _bo) = world(&app).await;
    app.enable_feature(&ana.org_id, "advanced_metrics").await;
    let mut b = Browser::new(&app);
    b.log_in("ana@example.com", PASSWORD).await;

    let (status, html, _) = b
        .get(&format!(
            "/dashboard?org={}&range=4w&interval=week",
            ana.org_id
        ))
        .await;
    assert_eq!(status, 200, "{html}");
    let from = attr_after(&html, "id=\"window-from\"", "datetime").unwrap();
    let to = attr_after(&html, "id=\"window-to\"", "datetime").unwrap();
    let api = app
        .gql(
            Some(&ana.token),
            "query($o: ID!, $f: DateTime!, $t: DateTime!) { organization(id: $o) { growth(from: $f, to: $t, interval: WEEK) {
               viralCoefficient invitationsPerUser invitationConversionRate shareCoefficient signups amplification } } }",
            json!({ "o": ana.org_id, "f": from, "t": to }),
        )
        .await;
    let g = &api["data"]["organization"]["growth"];
    assert_eq!(g["viralCoefficient"].as_f64(), Some(0.5), "{api}");
    assert_eq!(tile(&html, "tile-k"), 0.5);
    assert_eq!(
        tile(&html, "tile-i"),
        g["invitationsPerUser"].as_f64().unwrap()
    );
    assert_eq!(
        tile(&html, "tile-c"),
        g["invitationConversionRate"].as_f64().unwrap()
    );
    assert_eq!(tile(&html, "tile-signups"), 2.0);
    assert_eq!(tile(&html, "tile-amplification"), 2.0);
    assert!(
        html.contains("<span class=\"value\">0.500</span>"),
        "{html}"
    );
    // Charts carry titles, axis labels and exact numbers; the funnel its step conversions.
    assert!(html.contains("<title id=\"chart-k-title\">Viral coefficient K per week</title>"));
    assert!(html.contains("Signups per week, stacked by acquisition source"));
    assert!(html.contains(">Accepted</td><td>1</td><td>"), "{html}");
    assert!(
        html.contains("Ana</td><td>2</td><td>1</td><td>50.0%"),
        "top inviters: {html}"
    );
    assert!(
        html.contains("<td>settings</td><td>2</td><td>0</td><td>1</td>"),
        "surfaces: {html}"
    );

    // A window without the activity: K 0, and the empty state says what to do.
    let (status, html, _) = b
        .get(&format!(
            "/dashboard?org={}&range=custom&from=2020-01-06&to=2020-02-02",
            ana.org_id
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(tile(&html, "tile-k"), 0.0);
    assert!(html.contains("id=\"empty-window\""));
    assert_eq!(
        attr_after(&html, "id=\"window-from\"", "datetime").unwrap(),
        "2020-01-06T00:00:00Z"
    );
    assert_eq!(
        attr_after(&html, "id=\"window-to\"", "datetime").unwrap(),
        "2020-02-03T00:00:00Z"
    );

    // Bad controls are explained, not ignored.
    let (status, html, _) = b
        .get("/dashboard?range=custom&from=2020-02-02&to=2020-01-01")
        .await;
    assert_eq!(status, 400);
    assert!(html.contains("must not be before"), "{html}");
    let (status, _, _) = b.get("/dashboard?range=3w").await;
    assert_eq!(status, 400);

    // The CSV has one row per bucket with the same K.
    let resp = app
        .http
        .get(format!(
            "{}/dashboard.csv?org={}&range=4w&interval=week",
            app.url, ana.org_id
        ))
        .header(header::COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(resp.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("period_start,signups,signups_organic"));
    assert!(
        (5..=6).contains(&(lines.len() - 1)),
        "4 weeks cut at Mondays: {csv}"
    );
    let k_col = lines[0]
        .split(',')
        .position(|c| c == "viral_coefficient")
        .unwrap();
    let conversions: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(k_col).unwrap())
        .collect();
    assert!(conversions.contains(&"0.5"), "{csv}");
}

#[tokio::test]
async fn members_see_no_dashboard_other_organizations_are_refused_and_staff_see_the_platform() {
    let app = spawn_with(no_limits).await;
    let (ana, bo) = world(&app).await;
    // Bo is a MEMBER of Ana's workspace and OWNER of none (he joined by invitation).
    let mut b = Browser::new(&app);
    b.log_in("bo@example.com", PASSWORD).await;
    let (status, html, _) = b.get("/dashboard").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("You are not an ADMIN or OWNER of any organization yet"),
        "{html}"
    );
    let (status, html, _) = b.get(&format!("/dashboard?org={}", ana.org_id)).await;
    assert_eq!(status, 403, "{html}");
    assert!(!html.contains("tile-k"));
    let resp = app
        .http
        .get(format!("{}/dashboard.csv?org={}", app.url, ana.org_id))
        .header(header::COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let _ = bo;

    // Staff pick "Platform" (and see no organization they are not an admin of).
    kfactor::domain::identity::set_staff(&app.app.svc, "ana@example.com", true)
        .await
        .unwrap();
    let mut s = Browser::new(&app);
    s.log_in("ana@example.com", PASSWORD).await;
    let (status, html, _) = s.get("/dashboard?org=platform&range=4w").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<option value=\"platform\" selected>Platform</option>"),
        "{html}"
    );
    assert_eq!(tile(&html, "tile-signups"), 2.0);
}

#[tokio::test]
async fn without_advanced_metrics_the_charts_and_tables_give_way_to_the_upgrade_prompt() {
    let app = spawn_with(no_limits).await;
    let (ana, _) = world(&app).await;
    let mut b = Browser::new(&app);
    b.log_in("ana@example.com", PASSWORD).await;
    let (status, html, _) = b.get(&format!("/dashboard?org={}", ana.org_id)).await;
    assert_eq!(status, 200);
    let gated = !html.contains("id=\"chart-k\"");
    let api = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { growth(from: \"2026-01-01T00:00:00Z\", to: \"2027-01-01T00:00:00Z\") { upgrade { url } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let upgrade = &api["data"]["organization"]["growth"]["upgrade"];
    assert_eq!(
        gated,
        !upgrade.is_null(),
        "the page gates exactly when the API does: {api}"
    );
    if gated {
        assert!(html.contains("class=\"upgrade\""));
        assert!(
            html.contains(
                upgrade["url"]
                    .as_str()
                    .unwrap()
                    .replace('&', "&amp;")
                    .as_str()
            ),
            "{html}"
        );
        assert!(html.contains("id=\"tile-k\""), "the tiles stay");
    }
    app.enable_feature(&ana.org_id, "advanced_metrics").await;
    let (_, html, _) = b.get(&format!("/dashboard?org={}", ana.org_id)).await;
    assert!(html.contains("id=\"chart-k\""));
    assert!(!html.contains("class=\"upgrade\""));
}
