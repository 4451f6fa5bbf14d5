//! Passwords and sessions: reset by email (same answer for every address, single-use,
//! one hour), change with the current password, email change, the session list, revoking
//! one and logging out everywhere, and the limits on account emails.
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{json, Value};

use crate::{
    accounts::{mail_to, mails_to, spawn_mailing, token_in, PASSWORD},
    helpers::{error_codes, user_error_codes, TestApp},
};
use kfactor::config::Rate;

const REQUEST_RESET: &str =
    "mutation($e: String!) { requestPasswordReset(email: $e) { ok userErrors { code field } } }";
const RESET: &str =
    "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) {
  token user { email emailVerifiedAt } userErrors { code message field } } }";
const LOG_IN: &str = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token userErrors { code } } }";

async fn log_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(None, LOG_IN, json!({ "e": email, "p": password }))
        .await["data"]["logIn"]
        .clone()
}

/// Whether a token still signs in: `me` answers, or UNAUTHENTICATED.
async fn signed_in(app: &TestApp, token: &str) -> bool {
    let b = app.gql(Some(token), "{ me { id } }", json!({})).await;
    match error_codes(&b).as_slice() {
        [] => b["data"]["me"]["id"].is_string(),
        [code] if code == "UNAUTHENTICATED" => false,
        other => panic!("unexpected {other:?}: {b}"),
    }
}

#[tokio::test]
async fn a_reset_answers_alike_for_every_address_and_its_link_is_single_use_and_ends_every_session()
{
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let second = log_in(&app, "ana@example.com", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();

    let known = app
        .gql(None, REQUEST_RESET, json!({ "e": "ana@example.com" }))
        .await;
    let unknown = app
        .gql(None, REQUEST_RESET, json!({ "e": "nobody@example.com" }))
        .await;
    assert_eq!(
        known, unknown,
        "the answer does not tell whether an account exists"
    );
    assert_eq!(known["data"]["requestPasswordReset"]["ok"], true);
    let bad = app.gql(None, REQUEST_RESET, json!({ "e": "nope" })).await;
    assert_eq!(
        bad["data"]["requestPasswordReset"]["userErrors"][0]["field"],
        json!(["email"])
    );

    // Both requests did the same work; only the real account gets mail.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let db = &app.app.svc.db.read;
    for address in ["ana@example.com", "nobody@example.com"] {
        let rows = entity::email_tokens::Entity::find()
            .filter(entity::email_tokens::Column::Email.eq(address))
            .filter(
                entity::email_tokens::Column::Purpose
                    .eq(entity::email_tokens::Purpose::ResetPassword),
            )
            .all(db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{address}");
    }
    let mail = mail_to(&sink, "ana@example.com", "Reset your password").await;
    let token = token_in(&mail, &format!("{}/reset-password/", app.url));
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let row = entity::emails::Entity::find()
            .filter(entity::emails::Column::Recipient.eq("nobody@example.com"))
            .one(db)
            .await
            .unwrap()
            .unwrap();
        if row.status.as_str() != "pending" {
            assert_eq!(row.status.as_str(), "superseded", "handled, nothing sent");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    assert!(mails_to(&sink, "nobody@example.com").is_empty());

    // The form page uses nothing; the reset does, once.
    let page = app
        .http
        .get(format!("{}/reset-password/{token}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let short = app
        .gql(None, RESET, json!({ "t": token, "p": "short" }))
        .await;
    assert_eq!(
        short["data"]["resetPassword"]["userErrors"][0]["field"],
        json!(["newPassword"])
    );
    let r = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "a brand new password" }),
        )
        .await;
    let r = &r["data"]["resetPassword"];
    assert_eq!(r["userErrors"], json!([]), "{r}");
    assert!(
        r["user"]["emailVerifiedAt"].is_string(),
        "the link proved the address"
    );
    let fresh = r["token"].as_str().unwrap();
    assert!(
        !signed_in(&app, &ana.token).await,
        "every old session ended"
    );
    assert!(!signed_in(&app, &second).await);
    assert!(signed_in(&app, fresh).await);
    assert_eq!(
        user_error_codes(&log_in(&app, "ana@example.com", PASSWORD).await),
        vec!["INVALID_CREDENTIALS"]
    );
    assert!(log_in(&app, "ana@example.com", "a brand new password").await["token"].is_string());
    let again = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "yet another password" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&again["data"]["resetPassword"]),
        vec!["TOKEN_ALREADY_USED"]
    );

    // A link works for one hour.
    app.gql(None, REQUEST_RESET, json!({ "e": "ana@example.com" }))
        .await;
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    let token2 = loop {
        let t = mails_to(&sink, "ana@example.com")
            .iter()
            .filter(|m| m.contains("Reset your password"))
            .map(|m| token_in(m, &format!("{}/reset-password/", app.url)))
            .find(|t| *t != token);
        if let Some(t) = t {
            break t;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    };
    app.clock.advance(Duration::minutes(60));
    let late = app
        .gql(
            None,
            RESET,
            json!({ "t": token2, "p": "yet another password" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&late["data"]["resetPassword"]),
        vec!["TOKEN_EXPIRED"]
    );
    let page = app
        .form_post(
            &format!("/reset-password/{token2}"),
            &[("password", "yet another password")],
            &[],
        )
        .await;
    assert_eq!(page.status().as_u16(), 410);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let (app, _sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let other = log_in(&app, "ana@example.com", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { user { id } userErrors { code field } } }";
    let wrong = app
        .gql(
            Some(&ana.token),
            change,
            json!({ "c": "not my password", "n": "a brand new password" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&wrong["data"]["changePassword"]),
        vec!["INVALID_CREDENTIALS"]
    );
    let short = app
        .gql(
            Some(&ana.token),
            change,
            json!({ "c": PASSWORD, "n": "short" }),
        )
        .await;
    assert_eq!(
        short["data"]["changePassword"]["userErrors"][0]["field"],
        json!(["newPassword"])
    );
    assert!(signed_in(&app, &other).await, "nothing changed yet");

    let ok = app
        .gql(
            Some(&ana.token),
            change,
            json!({ "c": PASSWORD, "n": "a brand new password" }),
        )
        .await;
    assert_eq!(
        ok["data"]["changePassword"]["userErrors"],
        json!([]),
        "{ok}"
    );
    assert!(
        !signed_in(&app, &other).await,
        "the other session is refused"
    );
    assert!(signed_in(&app, &ana.token).await, "this one stays");
    assert!(log_in(&app, "ana@example.com", "a brand new password").await["token"].is_string());
    assert_eq!(
        user_error_codes(&log_in(&app, "ana@example.com", PASSWORD).await),
        vec!["INVALID_CREDENTIALS"]
    );
}

#[tokio::test]
async fn sessions_are_listed_and_end_one_by_one_or_all_at_once() {
    let (app, _sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let phone = app
        .http
        .post(format!("{}/graphql", app.url))
        .header("user-agent", "Phone/2.0")
        .json(&json!({ "query": LOG_IN, "variables": { "e": "ana@example.com", "p": PASSWORD } }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"]["logIn"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let list = app
        .gql(
            Some(&ana.token),
            "{ me { sessions { id createdAt lastUsedAt expiresAt userAgent ip current } } }",
            json!({}),
        )
        .await;
    let sessions = list["data"]["me"]["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{list}");
    let mine: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(mine.len(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["userAgent"], "Phone/2.0");
    assert_eq!(other["ip"], "127.0.0.1");

    // Someone else cannot end Ana's session.
    let eve = app.sign_up("Eve", "eve@example.com").await;
    let revoke = "mutation($i: ID!) { revokeSession(id: $i) { deletedId userErrors { code } } }";
    let r = app
        .gql(Some(&eve.token), revoke, json!({ "i": other["id"] }))
        .await;
    assert_eq!(
        user_error_codes(&r["data"]["revokeSession"]),
        vec!["NOT_FOUND"]
    );
    assert!(signed_in(&app, &phone).await);
    let r = app
        .gql(Some(&ana.token), revoke, json!({ "i": other["id"] }))
        .await;
    assert_eq!(r["data"]["revokeSession"]["deletedId"], other["id"]);
    assert!(!signed_in(&app, &phone).await);
    assert!(signed_in(&app, &ana.token).await);

    let third = log_in(&app, "ana@example.com", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let all = app
        .gql(Some(&ana.token), "mutation { logOutAll }", json!({}))
        .await;
    assert_eq!(all["data"]["logOutAll"], 2);
    assert!(!signed_in(&app, &ana.token).await);
    assert!(!signed_in(&app, &third).await);
    assert!(signed_in(&app, &eve.token).await, "only Ana's sessions");
}

#[tokio::test]
async fn changing_the_email_takes_effect_only_once_the_new_address_is_verified() {
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.sign_up("Bo", "bo@example.com").await;
    let change = "mutation($e: String!, $p: String!) { changeEmail(newEmail: $e, password: $p) { ok userErrors { code field } } }";
    let taken = app
        .gql(
            Some(&ana.token),
            change,
            json!({ "e": "BO@example.com", "p": PASSWORD }),
        )
        .await;
    // A taken address is answered like any other (its owner gets a notice instead).
    assert_eq!(taken["data"]["changeEmail"]["ok"], true, "{taken}");
    let wrong = app
        .gql(
            Some(&ana.token),
            change,
            json!({ "e": "ana@new.io", "p": "not my password" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&wrong["data"]["changeEmail"]),
        vec!["INVALID_CREDENTIALS"]
    );
    let ok = app
        .gql(
            Some(&ana.token),
            change,
            json!({ "e": "ana@new.io", "p": PASSWORD }),
        )
        .await;
    assert_eq!(ok["data"]["changeEmail"]["ok"], true, "{ok}");
    let me = app
        .gql(Some(&ana.token), "{ me { email } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"]["email"], "ana@example.com",
        "nothing changes before the proof"
    );

    let mail = mail_to(&sink, "ana@new.io", "Confirm your new email address").await;
    let token = token_in(&mail, &format!("{}/verify-email/", app.url));
    let v = app
        .gql(Some(&ana.token), "mutation($t: String!) { verifyEmail(token: $t) { user { email emailVerifiedAt } userErrors { code } } }", json!({ "t": token }))
        .await;
    assert_eq!(
        v["data"]["verifyEmail"]["user"]["email"], "ana@new.io",
        "{v}"
    );
    let me = app
        .gql(
            Some(&ana.token),
            "{ me { email emailVerifiedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], "ana@new.io");
    assert!(me["data"]["me"]["emailVerifiedAt"].is_string());
    assert!(log_in(&app, "ana@new.io", PASSWORD).await["token"].is_string());
    assert_eq!(
        user_error_codes(&log_in(&app, "ana@example.com", PASSWORD).await),
        vec!["INVALID_CREDENTIALS"]
    );
}

#[tokio::test]
async fn account_emails_are_limited_per_address_and_per_client() {
    let (app, _sink) = spawn_mailing(|c| {
        c.safety.reset_emails_per_address = Some(Rate::new(2, StdDuration::from_secs(3600)));
        c.safety.reset_emails_per_ip = Some(Rate::new(3, StdDuration::from_secs(3600)));
        c.safety.verification_emails_per_address = Some(Rate::new(1, StdDuration::from_secs(1800)));
        c.safety.verification_emails_per_ip = Some(Rate::new(2, StdDuration::from_secs(600)));
    })
    .await;
    let refused = |r: &(u16, Value), wait: u64| {
        assert_eq!(
            (r.0, error_codes(&r.1)),
            (429, vec!["RATE_LIMITED".to_string()]),
            "{}",
            r.1
        );
        assert_eq!(r.1["errors"][0]["extensions"]["retryAfterSeconds"], wait);
    };
    let request = |email: &'static str| {
        let app = &app;
        async move { app.post(None, REQUEST_RESET, json!({ "e": email })).await }
    };
    // Reset emails: 2 an hour per address, 3 an hour per client.
    assert_eq!(request("a@example.com").await.0, 200);
    assert_eq!(request("a@example.com").await.0, 200);
    refused(&request("a@example.com").await, 1800);
    assert_eq!(
        request("b@example.com").await.0,
        200,
        "the refused one used no client place"
    );
    refused(&request("c@example.com").await, 1200);
    app.clock.advance(Duration::minutes(20));
    assert_eq!(request("c@example.com").await.0, 200);
    app.clock.advance(Duration::minutes(40));
    assert_eq!(
        request("a@example.com").await.0,
        200,
        "the address refilled"
    );

    // Verification emails: 1 per 30 minutes per address, 2 per 10 minutes per client.
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let cy = app.sign_up("Cy", "cy@example.com").await;
    let resend = |token: String| {
        let app = &app;
        async move {
            app.post(
                Some(&token),
                "mutation { resendVerificationEmail { ok } }",
                json!({}),
            )
            .await
        }
    };
    assert_eq!(resend(ana.token.clone()).await.0, 200);
    refused(&resend(ana.token.clone()).await, 1800);
    assert_eq!(resend(bo.token.clone()).await.0, 200);
    refused(&resend(cy.token.clone()).await, 300);
    app.clock.advance(Duration::minutes(5));
    assert_eq!(resend(cy.token.clone()).await.0, 200);
    app.clock.advance(Duration::minutes(20));
    refused(&resend(ana.token.clone()).await, 300); // the client has room; the address not yet
    app.clock.advance(Duration::minutes(5));
    assert_eq!(resend(ana.token.clone()).await.0, 200);
}
