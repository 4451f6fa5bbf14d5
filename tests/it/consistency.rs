//! One condition, one code: an invitation token that was replaced or revoked answers the
//! same code with the path of the input that carried it, in `acceptInvitation` and in
//! `signUp`; and every attribution token or code given to `signUp` is checked by the same
//! rule (given but not valid refuses the signup, whichever it is).
use serde_json::{json, Value};

use crate::{
    helpers::{error_codes, spawn_with, TestApp, TestUser},
    invitations::emailed_token,
    projects::create_project,
    sharing::share,
};

const PASSWORD: &str = "correct horse battery";
const SIGN_UP: &str =
    "mutation($i: SignUpInput!) { signUp(input: $i) { token userErrors { code field } } }";
const ACCEPT: &str =
    "mutation($t: String!) { acceptInvitation(token: $t) { userErrors { code field } } }";
const PREVIEW: &str = "query($t: String!) { invitation(token: $t) { status } }";

/// The one userError of a payload as (code, field).
fn only_error(payload: &Value) -> (String, Value) {
    let errs = payload["userErrors"].as_array().expect("userErrors");
    assert_eq!(errs.len(), 1, "one userError expected: {payload}");
    (
        errs[0]["code"].as_str().unwrap().to_string(),
        errs[0]["field"].clone(),
    )
}

async fn invite(app: &TestApp, by: &TestUser, email: &str) -> Value {
    let body = app
        .gql(
            Some(&by.token),
            "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { invitations { id } userErrors { code } } }",
            json!({ "o": by.org_id, "e": [email] }),
        )
        .await;
    body["data"]["createInvitations"]["invitations"][0].clone()
}

async fn sign_up(app: &TestApp, input: Value) -> Value {
    app.gql(None, SIGN_UP, json!({ "i": input })).await["data"]["signUp"].clone()
}

#[tokio::test]
async fn a_replaced_or_revoked_invitation_answers_one_code_everywhere() {
    let app = spawn_with(|c| {
        c.safety.signups_per_ip = None;
        c.safety.signups_per_address = None;
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "business").await;

    // Replaced: the link of the first send, after a re-send.
    let inv = invite(&app, &ana, "bo@example.com").await;
    let old = emailed_token(&app, &inv).await;
    app.gql(
        Some(&ana.token),
        "mutation($i: ID!) { resendInvitation(id: $i) { userErrors { code } } }",
        json!({ "i": inv["id"] }),
    )
    .await;
    let p = sign_up(&app, json!({ "email": "bo@example.com", "password": PASSWORD, "name": "Bo", "inviteToken": old })).await;
    assert_eq!(
        only_error(&p),
        ("NOT_FOUND".into(), json!(["input", "inviteToken"]))
    );
    assert_eq!(
        error_codes(&app.gql(None, PREVIEW, json!({ "t": old })).await),
        vec!["NOT_FOUND"]
    );
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let r = app.gql(Some(&bo.token), ACCEPT, json!({ "t": old })).await;
    assert_eq!(
        only_error(&r["data"]["acceptInvitation"]),
        ("NOT_FOUND".into(), json!(["token"]))
    );

    // Revoked: the same code in both mutations; the public query shows it as data.
    let inv = invite(&app, &ana, "cy@example.com").await;
    let token = emailed_token(&app, &inv).await;
    app.gql(
        Some(&ana.token),
        "mutation($i: ID!) { revokeInvitation(id: $i) { userErrors { code } } }",
        json!({ "i": inv["id"] }),
    )
    .await;
    let p = sign_up(&app, json!({ "email": "cy@example.com", "password": PASSWORD, "name": "Cy", "inviteToken": token })).await;
    assert_eq!(
        only_error(&p),
        ("INVITATION_REVOKED".into(), json!(["input", "inviteToken"]))
    );
    let preview = app.gql(None, PREVIEW, json!({ "t": token })).await;
    assert_eq!(
        preview["data"]["invitation"]["status"], "REVOKED",
        "{preview}"
    );
    let cy = app.sign_up("Cy", "cy@example.com").await;
    let r = app
        .gql(Some(&cy.token), ACCEPT, json!({ "t": token }))
        .await;
    assert_eq!(
        only_error(&r["data"]["acceptInvitation"]),
        ("INVITATION_REVOKED".into(), json!(["token"]))
    );

    // Sent to someone else: the same code and field in both.
    let inv = invite(&app, &ana, "dee@example.com").await;
    let token = emailed_token(&app, &inv).await;
    let p = sign_up(&app, json!({ "email": "eve@example.com", "password": PASSWORD, "name": "Eve", "inviteToken": token })).await;
    assert_eq!(
        only_error(&p),
        (
            "INVITATION_EMAIL_MISMATCH".into(),
            json!(["input", "inviteToken"])
        )
    );
    let r = app
        .gql(Some(&cy.token), ACCEPT, json!({ "t": token }))
        .await;
    assert_eq!(
        only_error(&r["data"]["acceptInvitation"]),
        ("INVITATION_EMAIL_MISMATCH".into(), json!(["token"]))
    );
}

#[tokio::test]
async fn every_given_attribution_token_or_code_must_check_out() {
    let app = spawn_with(|c| {
        c.safety.signups_per_ip = None;
        c.safety.signups_per_address = None;
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, share_token) = share(&app, &ana, &project, "VIEW", None).await;
    let me = app
        .gql(Some(&ana.token), "{ me { referralUrl } }", json!({}))
        .await;
    let code = me["data"]["me"]["referralUrl"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let person =
        |n: u32| json!({ "email": format!("p{n}@example.com"), "password": PASSWORD, "name": "P" });
    let with = |n: u32, extra: Value| {
        let mut v = person(n);
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };

    // A valid share token does not excuse an invalid referral code, nor the reverse.
    let p = sign_up(
        &app,
        with(
            1,
            json!({ "shareToken": share_token, "referralCode": "nope1234" }),
        ),
    )
    .await;
    assert_eq!(
        only_error(&p),
        ("NOT_FOUND".into(), json!(["input", "referralCode"]))
    );
    let p = sign_up(
        &app,
        with(2, json!({ "shareToken": "nope", "referralCode": code })),
    )
    .await;
    assert_eq!(
        only_error(&p),
        ("NOT_FOUND".into(), json!(["input", "shareToken"]))
    );
    // Nor does a valid one of either excuse a bad invitation token.
    let p = sign_up(
        &app,
        with(
            3,
            json!({ "inviteToken": "nope", "shareToken": share_token }),
        ),
    )
    .await;
    assert_eq!(
        only_error(&p),
        ("NOT_FOUND".into(), json!(["input", "inviteToken"]))
    );
    // All valid: precedence picks the share.
    let p = sign_up(
        &app,
        with(
            4,
            json!({ "shareToken": share_token, "referralCode": code }),
        ),
    )
    .await;
    assert_eq!(p["userErrors"], json!([]), "{p}");
    let src = app
        .gql(
            p["token"].as_str(),
            "{ me { acquisitionSource } }",
            json!({}),
        )
        .await;
    assert_eq!(src["data"]["me"]["acquisitionSource"], "SHARE", "{src}");
}
