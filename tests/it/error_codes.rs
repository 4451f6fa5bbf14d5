//! Every `ErrorCode` the schema exposes is produced by the API: each is triggered here the way
//! a client would meet it, and the set seen must equal the enum's values in the schema (a
//! code added later without a way to reach it, or a path that stops producing its code,
//! fails this test).
use std::collections::BTreeSet;

use chrono::Duration;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_with, user_error_codes, TestApp, TestUser},
    invitations::emailed_token,
    projects::create_project,
};

const PASSWORD: &str = "correct horse battery";
const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) { userErrors { code } } }";
const INVITE: &str = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) {
  invitations { id url } userErrors { code } } }";
const ACCEPT: &str =
    "mutation($t: String!) { acceptInvitation(token: $t) { userErrors { code } } }";
const LINK: &str = "mutation($p: ID!, $e: DateTime) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: EDIT, expiresAt: $e}) {
  sharedLink { id url } userErrors { code } } }";
const GUEST_EDIT: &str = "mutation($t: String!) { guestEdit(input: {token: $t, content: \"x\"}) { userErrors { code } } }";
/// Confirming proves the account with its password (a mailbox alone does not).
const VERIFY: &str = "mutation($t: String!, $p: String) { verifyEmail(token: $t, password: $p) { userErrors { code } } }";

/// The single userError code of the payload at `data.<field>`.
fn code(body: &Value, field: &str) -> String {
    let codes = user_error_codes(&body["data"][field]);
    assert_eq!(codes.len(), 1, "one userError expected: {body}");
    codes[0].clone()
}

async fn sign_up(app: &TestApp, input: Value) -> String {
    code(
        &app.gql(None, SIGN_UP, json!({ "i": input })).await,
        "signUp",
    )
}

async fn invite(app: &TestApp, by: &TestUser, emails: &[&str]) -> Value {
    app.gql(
        Some(&by.token),
        INVITE,
        json!({ "o": by.org_id, "e": emails }),
    )
    .await["data"]["createInvitations"]
        .clone()
}

async fn accept(app: &TestApp, user: &TestUser, token: &str) -> Value {
    app.gql(Some(&user.token), ACCEPT, json!({ "t": token }))
        .await
}

/// The emailed link token of a fresh invitation of `email` by `by`.
async fn invited(app: &TestApp, by: &TestUser, email: &str) -> (String, String) {
    let p = invite(app, by, &[email]).await;
    assert_eq!(p["userErrors"], json!([]), "{p}");
    let inv = &p["invitations"][0];
    (
        inv["id"].as_str().unwrap().to_string(),
        emailed_token(app, inv).await,
    )
}

/// An EDIT link of a new project of `by`, optionally expiring; returns (id, token).
async fn link(app: &TestApp, by: &TestUser, expires: Option<String>) -> (String, String) {
    let project = create_project(app, by, "Shared").await;
    let body = app
        .gql(Some(&by.token), LINK, json!({ "p": project, "e": expires }))
        .await;
    let l = &body["data"]["createSharedLink"]["sharedLink"];
    let url = l["url"].as_str().unwrap_or_else(|| panic!("{body}"));
    (
        l["id"].as_str().unwrap().to_string(),
        url.rsplit('/').next().unwrap().to_string(),
    )
}

/// The token of the verification email sent to `user` at signup.
async fn verification_token(app: &TestApp, user: &TestUser) -> String {
    let id = kfactor::domain::ids::UserId::parse(&user.id).unwrap().0;
    let row = entity::email_tokens::Entity::find()
        .filter(entity::email_tokens::Column::UserId.eq(id))
        .one(&app.app.svc.db.read)
        .await
        .unwrap()
        .expect("a verification email was sent");
    kfactor::domain::accounts::token(&app.app.svc.keys, &row)
}

#[tokio::test]
async fn every_error_code_of_the_schema_is_reachable() {
    let app = spawn_with(|c| {
        c.webhook_allow_http = true;
        c.webhook_allow_private = true;
        // Many signups from one address: not what is tested here.
        c.safety.signups_per_ip = None;
        c.safety.signups_per_address = None;
        c.safety.unverified_invitation_sends_per_hour = 10;
    })
    .await;
    let mut seen = BTreeSet::new();
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let eve = app.sign_up("Eve", "eve@example.com").await;
    let gus = app.sign_up("Gus", "gus@example.com").await;
    let hal = app.sign_up("Hal", "hal@example.com").await;

    // Accounts.
    seen.insert(
        sign_up(
            &app,
            json!({ "email": "nope", "password": PASSWORD, "name": "X" }),
        )
        .await,
    );
    seen.insert(
        sign_up(
            &app,
            json!({ "email": "ana@example.com", "password": PASSWORD, "name": "X" }),
        )
        .await,
    );
    let body = app
        .gql(None, "mutation { logIn(input: {email: \"ana@example.com\", password: \"wrong password!\"}) { userErrors { code } } }", json!({}))
        .await;
    seen.insert(code(&body, "logIn"));
    let me = app
        .gql(Some(&ana.token), "{ me { referralUrl } }", json!({}))
        .await;
    let referral = me["data"]["me"]["referralUrl"].as_str().unwrap();
    let referral = referral.rsplit('/').next().unwrap();
    seen.insert(sign_up(&app, json!({ "email": "ana+again@example.com", "password": PASSWORD, "name": "A", "referralCode": referral })).await);

    // Organizations.
    let body = app
        .gql(Some(&ana.token), "mutation { renameOrganization(id: \"org_0192f5e0c4a87c3b9d1e2f3a4b5c6d7e\", name: \"X\") { userErrors { code } } }", json!({}))
        .await;
    seen.insert(code(&body, "renameOrganization"));
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let body = app
        .gql(Some(&bo.token), "mutation($o: ID!, $u: ID!) { removeMember(organizationId: $o, userId: $u) { userErrors { code } } }", json!({ "o": ana.org_id, "u": ana.id }))
        .await;
    seen.insert(code(&body, "removeMember"));
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($o: ID!) { leaveOrganization(id: $o) { userErrors { code } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    seen.insert(code(&body, "leaveOrganization"));

    // Invitations (the free plan's member limit would stop them first).
    app.change_plan(&ana.org_id, "business").await;
    let p = invite(&app, &ana, &["bo@example.com"]).await;
    seen.extend(user_error_codes(&p));
    let p = invite(&app, &ana, &["cfo@example.com"]).await;
    let copied = p["invitations"][0]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    seen.insert(sign_up(&app, json!({ "email": "cfo@example.com", "password": PASSWORD, "name": "C", "inviteToken": copied })).await);
    let (_, dan) = invited(&app, &ana, "dan@example.com").await;
    seen.insert(code(&accept(&app, &eve, &dan).await, "acceptInvitation"));
    let (_, to_eve) = invited(&app, &ana, "eve@example.com").await;
    assert_eq!(
        accept(&app, &eve, &to_eve).await["data"]["acceptInvitation"]["userErrors"],
        json!([])
    );
    seen.insert(code(&accept(&app, &eve, &to_eve).await, "acceptInvitation"));
    let (gus_inv, to_gus) = invited(&app, &ana, "gus@example.com").await;
    app.gql(
        Some(&ana.token),
        "mutation($i: ID!) { revokeInvitation(id: $i) { userErrors { code } } }",
        json!({ "i": gus_inv }),
    )
    .await;
    seen.insert(code(&accept(&app, &gus, &to_gus).await, "acceptInvitation"));
    let (_, to_hal) = invited(&app, &ana, "hal@example.com").await;
    // An unverified sender's budget (10 an hour here; 5 used above).
    let many: Vec<String> = (0..6).map(|i| format!("p{i}@example.com")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    seen.extend(user_error_codes(&invite(&app, &ana, &many).await));

    // Plans.
    for n in 0..3 {
        create_project(&app, &bo, &format!("P{n}")).await;
    }
    let body = app
        .gql(Some(&bo.token), "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"One too many\"}) { userErrors { code } } }", json!({ "o": bo.org_id }))
        .await;
    seen.insert(code(&body, "createProject"));
    let body = app
        .gql(Some(&bo.token), "mutation($o: ID) { createWebhookEndpoint(input: {organizationId: $o, url: \"http://127.0.0.1:9/hook\"}) { userErrors { code } } }", json!({ "o": bo.org_id }))
        .await;
    seen.insert(code(&body, "createWebhookEndpoint"));

    // Shared links (EDIT links are a Pro feature).
    app.change_plan(&gus.org_id, "pro").await;
    let (revoked, revoked_token) = link(&app, &gus, None).await;
    app.gql(
        Some(&gus.token),
        "mutation($i: ID!) { revokeSharedLink(id: $i) { userErrors { code } } }",
        json!({ "i": revoked }),
    )
    .await;
    seen.insert(code(
        &app.gql(None, GUEST_EDIT, json!({ "t": revoked_token }))
            .await,
        "guestEdit",
    ));
    let soon = (app.clock_now() + Duration::hours(1)).to_rfc3339();
    let (_, expiring) = link(&app, &gus, Some(soon)).await;

    // Email links: single use, 48 hours.
    let t = verification_token(&app, &hal).await;
    assert_eq!(
        app.gql(None, VERIFY, json!({ "t": t, "p": PASSWORD }))
            .await["data"]["verifyEmail"]["userErrors"],
        json!([])
    );
    seen.insert(code(
        &app.gql(None, VERIFY, json!({ "t": t, "p": PASSWORD }))
            .await,
        "verifyEmail",
    ));
    let late = verification_token(&app, &bo).await;

    // Time passes: links, email links and invitations expire.
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    seen.insert(code(
        &app.gql(None, GUEST_EDIT, json!({ "t": expiring })).await,
        "guestEdit",
    ));
    seen.insert(code(
        &app.gql(None, VERIFY, json!({ "t": late, "p": PASSWORD }))
            .await,
        "verifyEmail",
    ));
    seen.insert(code(&accept(&app, &hal, &to_hal).await, "acceptInvitation"));

    let schema = app
        .gql(
            None,
            "{ __type(name: \"ErrorCode\") { enumValues { name } } }",
            json!({}),
        )
        .await;
    let all: BTreeSet<String> = schema["data"]["__type"]["enumValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert!(all.len() >= 17, "{all:?}");
    assert_eq!(seen, all, "codes seen vs. codes in the schema");
}
