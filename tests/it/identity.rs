//! Sign-up, attribution, log-in, sessions.
use chrono::Duration;
use serde_json::json;

use crate::helpers::{error_codes, spawn, user_error_codes};

const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) {
    token user { id email acquisitionSource invitedBy { id } referralCode referralUrl }
    organization { id name viewerRole }
    userErrors { code message field } } }";

const ME: &str = "{ me { id name email acquisitionSource referralCode referralUrl createdAt
    activeOrganization { id name viewerRole }
    memberships { role organization { id name } user { id } } } }";

#[tokio::test]
async fn sign_up_creates_a_workspace_and_a_session() {
    let app = spawn().await;
    let body = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "  Ana@Example.COM ", "password": "correct horse battery", "name": " Ana " } }))
        .await;
    let p = &body["data"]["signUp"];
    assert_eq!(p["userErrors"], json!([]));
    assert_eq!(
        p["user"]["email"], "ana@example.com",
        "emails are trimmed and lower-cased"
    );
    assert_eq!(p["user"]["acquisitionSource"], "ORGANIC");
    assert_eq!(p["organization"]["name"], "Ana's workspace");
    assert_eq!(p["organization"]["viewerRole"], "OWNER");
    let code = p["user"]["referralCode"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    assert_eq!(p["user"]["referralUrl"], format!("{}/r/{code}", app.url));

    let token = p["token"].as_str().unwrap();
    let me = app.gql(Some(token), ME, json!({})).await;
    let me = &me["data"]["me"];
    assert_eq!(me["id"], p["user"]["id"]);
    assert_eq!(me["name"], "Ana");
    assert_eq!(me["activeOrganization"]["id"], p["organization"]["id"]);
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(me["memberships"][0]["role"], "OWNER");
    assert_eq!(me["memberships"][0]["user"]["id"], p["user"]["id"]);

    // The workspace's feed records who created it.
    let feed = app
        .gql(
            Some(token),
            "query($id: ID!) { organization(id: $id) { activity { totalCount nodes { type summary actor { displayName user { id } } } } } }",
            json!({ "id": p["organization"]["id"] }),
        )
        .await;
    let events = &feed["data"]["organization"]["activity"];
    assert_eq!(events["totalCount"], 1);
    assert_eq!(events["nodes"][0]["type"], "MEMBER_JOINED");
    assert_eq!(events["nodes"][0]["actor"]["displayName"], "Ana");
    assert_eq!(events["nodes"][0]["summary"], "Ana created Ana's workspace");
}

#[tokio::test]
async fn me_is_null_without_a_token() {
    let app = spawn().await;
    let body = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(body["data"]["me"], json!(null));
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn utm_source_is_paid_and_invalid_viral_tokens_refuse_the_signup() {
    let app = spawn().await;
    let body = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "p@x.io", "password": "correct horse battery", "name": "P", "utmSource": "google-ads" } }))
        .await;
    assert_eq!(body["data"]["signUp"]["user"]["acquisitionSource"], "PAID");

    for (field, value) in [
        ("inviteToken", "abc"),
        ("shareToken", "abc"),
        ("referralCode", "abc"),
    ] {
        let body = app
            .gql(None, SIGN_UP, json!({ "i": { "email": "v@x.io", "password": "correct horse battery", "name": "V", field: value } }))
            .await;
        let p = &body["data"]["signUp"];
        // An unknown token or code is the condition NOT_FOUND, at the field that carried it.
        assert_eq!(user_error_codes(p), vec!["NOT_FOUND"], "{body}");
        assert_eq!(p["userErrors"][0]["field"], json!(["input", field]));
        assert_eq!(p["token"], json!(null));
    }
    // Nothing was created by the refused attempts: the email is still free.
    let body = app
        .gql(
            None,
            SIGN_UP,
            json!({ "i": { "email": "v@x.io", "password": "correct horse battery", "name": "V" } }),
        )
        .await;
    assert_eq!(body["data"]["signUp"]["userErrors"], json!([]));
}

#[tokio::test]
async fn bad_input_gives_field_errors_and_creates_nothing() {
    let app = spawn().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": "correct horse battery", "name": "A" }),
            "email",
        ),
        (
            json!({ "email": "a@x.io", "password": "short", "name": "A" }),
            "password",
        ),
        (
            json!({ "email": "a@x.io", "password": "x".repeat(1025), "name": "A" }),
            "password",
        ),
        (
            json!({ "email": "a@x.io", "password": "correct horse battery", "name": "N".repeat(101) }),
            "name",
        ),
        (
            json!({ "email": "a@x.io", "password": "correct horse battery", "name": "   " }),
            "name",
        ),
    ];
    for (input, field) in cases {
        let body = app.gql(None, SIGN_UP, json!({ "i": input })).await;
        let p = &body["data"]["signUp"];
        assert_eq!(user_error_codes(p), vec!["INVALID_INPUT"], "{body}");
        assert_eq!(
            p["userErrors"][0]["field"],
            json!(["input", field]),
            "{body}"
        );
        assert!(!p["userErrors"][0]["message"].as_str().unwrap().is_empty());
        assert_eq!(p["user"], json!(null));
    }
    // None of the attempts left an account behind.
    let body = app
        .gql(None, "mutation { logIn(input: {email: \"a@x.io\", password: \"correct horse battery\"}) { token userErrors { code } } }", json!({}))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["logIn"]),
        vec!["INVALID_CREDENTIALS"]
    );
}

#[tokio::test]
async fn email_taken_is_case_insensitive() {
    let app = spawn().await;
    app.sign_up("Ana", "ana@example.com").await;
    let body = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "ANA@example.com", "password": "correct horse battery", "name": "Imposter" } }))
        .await;
    let p = &body["data"]["signUp"];
    assert_eq!(user_error_codes(p), vec!["EMAIL_TAKEN"]);
    assert_eq!(p["userErrors"][0]["field"], json!(["input", "email"]));
}

const LOG_IN: &str =
    "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) {
    token user { id } organization { id } userErrors { code message } } }";

#[tokio::test]
async fn log_in_failures_look_the_same() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let wrong = app
        .gql(
            None,
            LOG_IN,
            json!({ "e": "ana@example.com", "p": "wrong password!" }),
        )
        .await;
    let unknown = app
        .gql(
            None,
            LOG_IN,
            json!({ "e": "nobody@example.com", "p": "wrong password!" }),
        )
        .await;
    let malformed = app
        .gql(None, LOG_IN, json!({ "e": "nobody", "p": "x" }))
        .await;
    for body in [&wrong, &unknown, &malformed] {
        let p = &body["data"]["logIn"];
        assert_eq!(user_error_codes(p), vec!["INVALID_CREDENTIALS"], "{body}");
        assert_eq!(p["token"], json!(null));
    }
    assert_eq!(
        wrong["data"]["logIn"]["userErrors"][0]["message"],
        unknown["data"]["logIn"]["userErrors"][0]["message"],
        "the message does not reveal whether the email exists"
    );

    let ok = app
        .gql(
            None,
            LOG_IN,
            json!({ "e": "ANA@example.com", "p": "correct horse battery" }),
        )
        .await;
    let p = &ok["data"]["logIn"];
    assert_eq!(p["userErrors"], json!([]));
    assert_eq!(p["user"]["id"], ana.id.as_str());
    assert_eq!(p["organization"]["id"], ana.org_id.as_str());
    assert_ne!(
        p["token"],
        json!(ana.token),
        "every log-in is a new session"
    );
}

#[tokio::test]
async fn log_out_ends_only_that_session() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let second = app
        .gql(
            None,
            LOG_IN,
            json!({ "e": "ana@example.com", "p": "correct horse battery" }),
        )
        .await;
    let second = second["data"]["logIn"]["token"]
        .as_str()
        .unwrap()
        .to_string();

    let out = app
        .gql(Some(&ana.token), "mutation { logOut }", json!({}))
        .await;
    assert_eq!(out["data"]["logOut"], true);
    let me = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(error_codes(&me), vec!["UNAUTHENTICATED"]);
    let me = app.gql(Some(&second), "{ me { id } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], ana.id.as_str());

    let again = app.gql(None, "mutation { logOut }", json!({})).await;
    assert_eq!(error_codes(&again), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn sessions_expire_after_30_idle_days_and_slide_when_used() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;

    app.clock.advance(Duration::days(20));
    let me = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], ana.id.as_str(), "used on day 20");

    app.clock.advance(Duration::days(15));
    // Day 35: Ana's session slid to day 50; Bo's (never used) ended on day 30.
    let me = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], ana.id.as_str());
    let me = app.gql(Some(&bo.token), "{ me { id } }", json!({})).await;
    assert_eq!(error_codes(&me), vec!["UNAUTHENTICATED"]);
    assert!(me["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    app.clock.advance(Duration::days(31));
    let me = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(error_codes(&me), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn garbage_tokens_are_unauthenticated() {
    let app = spawn().await;
    for header in ["Bearer nonsense", "Basic abc", "Bearer "] {
        let resp = app
            .http
            .post(format!("{}/graphql", app.url))
            .header("authorization", header)
            .json(&json!({ "query": "mutation { createOrganization(name: \"X\") { organization { id } } }" }))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            error_codes(&body),
            vec!["UNAUTHENTICATED"],
            "{header}: {body}"
        );
    }
}

#[tokio::test]
async fn private_user_fields_are_the_users_own() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let body = app
        .gql(
            Some(&bo.token),
            "query($id: ID!) { organization(id: $id) { members { nodes { user { id email memberships { role } activeOrganization { id } } } } } }",
            json!({ "id": ana.org_id }),
        )
        .await;
    let nodes = body["data"]["organization"]["members"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let ana_node = nodes
        .iter()
        .find(|n| n["user"]["id"] == ana.id.as_str())
        .unwrap();
    assert_eq!(
        ana_node["user"]["email"], "ana@example.com",
        "co-members see emails"
    );
    assert_eq!(
        ana_node["user"]["memberships"],
        json!([]),
        "memberships are the user's own only"
    );
    assert_eq!(ana_node["user"]["activeOrganization"], json!(null));

    let body = app
        .gql(Some(&bo.token), "query($id: ID!) { organization(id: $id) { members { nodes { user { referralCode } } } } }", json!({ "id": ana.org_id }))
        .await;
    assert!(
        error_codes(&body).contains(&"FORBIDDEN".to_string()),
        "{body}"
    );
}
