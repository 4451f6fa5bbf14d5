//! Referral codes, links and attribution precedence.
use serde_json::json;

use crate::helpers::{spawn, user_error_codes};

const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) {
  user { id acquisitionSource invitedBy { id } } organization { name } userErrors { code message field } } }";

async fn referral_code(app: &crate::helpers::TestApp, token: &str) -> String {
    app.gql(Some(token), "{ me { referralCode } }", json!({}))
        .await["data"]["me"]["referralCode"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn referral_signups_are_credited_and_self_referrals_refused() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let code = referral_code(&app, &ana.token).await;

    let body = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "bo@example.com", "password": "correct horse battery", "name": "Bo", "referralCode": code.to_uppercase(), "utmSource": "ads" } }))
        .await;
    let s = &body["data"]["signUp"];
    assert_eq!(s["userErrors"], json!([]), "{body}");
    assert_eq!(
        s["user"]["acquisitionSource"], "REFERRAL",
        "referral beats utm"
    );
    assert_eq!(s["user"]["invitedBy"]["id"], ana.id.as_str());
    assert_eq!(
        s["organization"]["name"], "Bo's workspace",
        "referred users get their own workspace"
    );

    use sea_orm::EntityTrait;
    let hooks = entity::webhook_messages::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].event_type, "referral.signup");
    assert_eq!(hooks[0].payload["data"]["source"], "REFERRAL");
    assert_eq!(hooks[0].payload["data"]["referrer_id"], ana.id.as_str());
    assert_eq!(hooks[0].payload["data"]["email"], "bo@example.com");

    let own = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "ana+again@example.com", "password": "correct horse battery", "name": "Ana 2", "referralCode": code } }))
        .await;
    assert_eq!(
        user_error_codes(&own["data"]["signUp"]),
        vec!["SELF_REFERRAL"]
    );

    let unknown = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "cy@example.com", "password": "correct horse battery", "name": "Cy", "referralCode": "nope1234" } }))
        .await;
    let p = &unknown["data"]["signUp"];
    assert_eq!(user_error_codes(p), vec!["NOT_FOUND"]);
    assert_eq!(
        p["userErrors"][0]["field"],
        json!(["input", "referralCode"])
    );
}

#[tokio::test]
async fn referral_links_set_a_cookie_that_the_signup_page_carries() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let code = referral_code(&app, &ana.token).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let resp = no_redirects
        .get(format!("{}/r/{code}", app.url))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());
    assert_eq!(
        resp.headers()["location"],
        format!("{}/signup?ref={code}", app.url)
    );
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with(&format!("kf_ref={code};")), "{cookie}");
    assert!(
        cookie.contains(&format!("Max-Age={}", 90 * 86400))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );

    // The sign-up page picks the code up from the cookie alone.
    let page = app
        .http
        .get(format!("{}/signup", app.url))
        .header("cookie", format!("kf_ref={code}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("name=\"referral\" value=\"{code}\"")),
        "{page}"
    );

    let resp = app
        .form_post(
            "/signup",
            &[
                ("name", "Bo"),
                ("email", "bo@example.com"),
                ("password", "correct horse battery"),
                ("referral", code.as_str()),
            ],
            &[],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("Welcome, Bo"));
    let bo = app
        .gql(None, "mutation { logIn(input: {email: \"bo@example.com\", password: \"correct horse battery\"}) { user { acquisitionSource invitedBy { id } } } }", json!({}))
        .await;
    assert_eq!(bo["data"]["logIn"]["user"]["acquisitionSource"], "REFERRAL");

    // Unknown codes still land on the sign-up page, without a cookie.
    let resp = no_redirects
        .get(format!("{}/r/unknown", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], format!("{}/signup", app.url));
    assert!(resp.headers().get("set-cookie").is_none());
}
