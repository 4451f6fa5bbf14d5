//! Confirming a verification link: opening it changes nothing, confirming needs the
//! account (its session or password) besides the mailbox, a verified join ends the
//! account's earlier sessions; `changeEmail` does not tell which addresses have accounts.
use std::time::Duration as StdDuration;

use serde_json::{json, Value};

use crate::{
    accounts::{mail_to, mails_to, spawn_mailing, token_in, PASSWORD},
    helpers::{error_codes, user_error_codes, TestApp, TestUser},
    invitations::token_of,
};
use kfactor::config::Rate;

const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } organization { id } userErrors { code message } } }";
const INVITE: &str = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) {
  invitations { id url } userErrors { code message } } }";
const VERIFY: &str = "mutation($t: String!, $p: String) { verifyEmail(token: $t, password: $p) {
  token user { id email emailVerifiedAt } organization { id viewerRole } userErrors { code message field } } }";
const ME: &str = "{ me { emailVerifiedAt memberships { organization { id } } } }";

/// Signs up through a copied invitation link: EMAIL_NOT_VERIFIED, and the session token.
async fn copied_signup(app: &TestApp, inviter: &TestUser, email: &str) -> (String, String) {
    let p = app
        .gql(
            Some(&inviter.token),
            INVITE,
            json!({ "o": inviter.org_id, "e": [email] }),
        )
        .await;
    let copied = token_of(&p["data"]["createInvitations"]["invitations"][0]);
    let s = app
        .gql(
            None,
            SIGN_UP,
            json!({ "i": { "email": email, "password": PASSWORD, "name": "Someone", "inviteToken": copied } }),
        )
        .await;
    let s = &s["data"]["signUp"];
    assert_eq!(user_error_codes(s), vec!["EMAIL_NOT_VERIFIED"], "{s}");
    (
        s["token"].as_str().unwrap().to_string(),
        s["user"]["id"].as_str().unwrap().to_string(),
    )
}

/// `me` with a token: None when the token no longer signs in.
async fn me(app: &TestApp, token: &str) -> Option<Value> {
    let b = app.gql(Some(token), ME, json!({})).await;
    match error_codes(&b).as_slice() {
        [] => Some(b["data"]["me"].clone()),
        [c] if c == "UNAUTHENTICATED" => None,
        other => panic!("unexpected {other:?}: {b}"),
    }
}

async fn log_in(app: &TestApp, email: &str) -> String {
    let b = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }",
            json!({ "e": email, "p": PASSWORD }),
        )
        .await;
    b["data"]["logIn"]["token"].as_str().unwrap().to_string()
}

async fn verify(
    app: &TestApp,
    session: Option<&str>,
    token: &str,
    password: Option<&str>,
) -> Value {
    app.gql(session, VERIFY, json!({ "t": token, "p": password }))
        .await["data"]["verifyEmail"]
        .clone()
}

#[tokio::test]
async fn a_member_copying_the_cfos_invitation_gets_nothing_from_the_cfos_mailbox_or_its_scanner() {
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@acme.io").await;
    let mallory = app.sign_up("Mallory", "mallory@acme.io").await;
    app.add_member(&ana.org_id, &mallory.id, "member").await;
    let mallory = TestUser {
        org_id: ana.org_id.clone(),
        ..mallory
    };
    let (fake, _) = copied_signup(&app, &mallory, "cfo@acme.io").await;

    // The real CFO's email says what confirming would do, and that ignoring it is safe.
    let mail = mail_to(&sink, "cfo@acme.io", "Confirm your email address").await;
    assert!(
        mail.contains("also joins Ana's workspace as invited by Mallory")
            && mail.contains("If you did not sign up, ignore this email"),
        "{mail}"
    );
    let link = token_in(&mail, &format!("{}/verify-email/", app.url));

    // Her mail scanner opens the link (twice): a page with a form, nothing used.
    for _ in 0..2 {
        let page = app
            .http
            .get(format!("{}/verify-email/{link}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("method=\"post\"") && html.contains("Confirming also joins"),
            "{html}"
        );
    }
    let state = me(&app, &fake)
        .await
        .expect("Mallory's session still signs in");
    assert_eq!(state["emailVerifiedAt"], Value::Null);
    assert_eq!(state["memberships"], json!([]));

    // The link alone does not confirm, through the API or the page; a guess is a wrong password.
    let v = verify(&app, None, &link, None).await;
    assert_eq!(user_error_codes(&v), vec!["INVALID_INPUT"], "{v}");
    assert_eq!(v["userErrors"][0]["field"], json!(["password"]));
    let v = verify(&app, None, &link, Some("a guess at it")).await;
    assert_eq!(user_error_codes(&v), vec!["INVALID_CREDENTIALS"]);
    let posted = app
        .form_post(
            &format!("/verify-email/{link}"),
            &[("password", "another guess")],
            &[],
        )
        .await;
    assert_eq!(posted.status().as_u16(), 401);
    // Someone else's session is no proof either.
    let v = verify(&app, Some(&ana.token), &link, None).await;
    assert_eq!(user_error_codes(&v), vec!["INVALID_INPUT"]);

    let state = me(&app, &fake).await.unwrap();
    assert_eq!(state["emailVerifiedAt"], Value::Null);
    assert_eq!(state["memberships"], json!([]));
    let members = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { members { totalCount } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        members["data"]["organization"]["members"]["totalCount"], 2,
        "{members}"
    );
}

#[tokio::test]
async fn confirming_a_copied_link_signup_with_the_password_joins_and_ends_earlier_sessions() {
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@acme.io").await;
    let (first, _) = copied_signup(&app, &ana, "cy@acme.io").await;
    let second = log_in(&app, "cy@acme.io").await;
    let mail = mail_to(&sink, "cy@acme.io", "Confirm your email address").await;
    let link = token_in(&mail, &format!("{}/verify-email/", app.url));

    // Confirmed without a session (another device): the payload shows the verified user
    // and carries the only session that still works.
    let v = verify(&app, None, &link, Some(PASSWORD)).await;
    assert_eq!(v["userErrors"], json!([]), "{v}");
    assert_eq!(v["organization"]["id"], ana.org_id.as_str());
    assert_eq!(v["user"]["email"], "cy@acme.io");
    assert!(v["user"]["emailVerifiedAt"].is_string(), "{v}");
    let fresh = v["token"].as_str().expect("a new session").to_string();
    assert!(me(&app, &first).await.is_none());
    assert!(me(&app, &second).await.is_none());
    let state = me(&app, &fresh).await.unwrap();
    assert_eq!(
        state["memberships"],
        json!([{ "organization": { "id": ana.org_id } }])
    );
    let again = verify(&app, None, &link, Some(PASSWORD)).await;
    assert_eq!(user_error_codes(&again), vec!["TOKEN_ALREADY_USED"]);
}

#[tokio::test]
async fn confirming_where_signed_in_keeps_that_session_only() {
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@acme.io").await;
    let (signed_up, _) = copied_signup(&app, &ana, "cy@acme.io").await;
    let elsewhere = log_in(&app, "cy@acme.io").await;
    let mail = mail_to(&sink, "cy@acme.io", "Confirm your email address").await;
    let link = token_in(&mail, &format!("{}/verify-email/", app.url));

    let v = verify(&app, Some(&signed_up), &link, None).await;
    assert_eq!(v["userErrors"], json!([]), "{v}");
    assert_eq!(v["organization"]["viewerRole"], "MEMBER");
    assert_eq!(v["token"], Value::Null);
    assert!(me(&app, &elsewhere).await.is_none());
    let state = me(&app, &signed_up)
        .await
        .expect("the proving session stays");
    assert!(state["emailVerifiedAt"].is_string());
    assert_eq!(state["memberships"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_confirmation_page_confirms_with_the_password_and_an_own_signup_stays_signed_in() {
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mail = mail_to(&sink, "ana@example.com", "Confirm your email address").await;
    assert!(!mail.contains("joins"), "{mail}");
    let link = token_in(&mail, &format!("{}/verify-email/", app.url));
    let url = format!("{}/verify-email/{link}", app.url);
    let form = app.http.get(&url).send().await.unwrap();
    assert_eq!(form.status().as_u16(), 200);
    assert!(me(&app, &ana.token).await.unwrap()["emailVerifiedAt"].is_null());

    let done = app
        .form_post(
            &format!("/verify-email/{link}"),
            &[("password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(done.status().as_u16(), 200);
    assert!(done
        .text()
        .await
        .unwrap()
        .contains("ana@example.com is confirmed"));
    // Nothing was joined, so the account's session goes on.
    let state = me(&app, &ana.token).await.expect("still signed in");
    assert!(state["emailVerifiedAt"].is_string());
    let used = app.http.get(&url).send().await.unwrap();
    assert_eq!(used.status().as_u16(), 410);
}

#[tokio::test]
async fn change_email_answers_the_same_for_taken_addresses_and_tells_their_owner() {
    let (app, sink) = spawn_mailing(|c| {
        c.safety.verification_emails_per_ip = Some(Rate::new(3, StdDuration::from_secs(3600)))
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.sign_up("Bo", "bo@example.com").await;
    let change = "mutation($e: String!) { changeEmail(newEmail: $e, password: \"correct horse battery\") { ok userErrors { code field } } }";
    let ask = |e: &'static str| {
        let (app, token) = (&app, ana.token.clone());
        async move { app.post(Some(&token), change, json!({ "e": e })).await }
    };
    let taken = ask("bo@example.com").await;
    let free = ask("ana@new.example").await;
    assert_eq!(taken, free, "the answer tells nothing");
    assert_eq!(taken.1["data"]["changeEmail"]["ok"], true);

    // Bo is told someone tried; he gets no link, and nothing of his changed.
    let notice = mail_to(
        &sink,
        "bo@example.com",
        "Someone tried to use your email address",
    )
    .await;
    assert!(!notice.contains("/verify-email/"), "{notice}");
    mail_to(&sink, "ana@new.example", "Confirm your new email address").await;
    log_in(&app, "bo@example.com").await;
    let mine = app
        .gql(Some(&ana.token), "{ me { email } }", json!({}))
        .await;
    assert_eq!(mine["data"]["me"]["email"], "ana@example.com");

    // Probing spends the limits like any other request: taken or not, the fourth is refused.
    let (status, _) = ask("nobody@example.com").await;
    assert_eq!(status, 200);
    let (status, body) = ask("bo@example.com").await;
    assert_eq!(
        (status, error_codes(&body)),
        (429, vec!["RATE_LIMITED".to_string()])
    );
    let bad = ask("not an address").await;
    assert_eq!(
        bad.1["data"]["changeEmail"]["userErrors"],
        json!([{ "code": "INVALID_INPUT", "field": ["newEmail"] }])
    );
    let notices = mails_to(&sink, "bo@example.com")
        .into_iter()
        .filter(|m| m.contains("Someone tried"))
        .count();
    assert_eq!(notices, 1);
}
