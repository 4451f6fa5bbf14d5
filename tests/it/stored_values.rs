//! Stored enum values that kfactor does not know (a bad migration, a hand-edited row, a
//! newer version's value) make the read fail with an error; they are never read as a
//! default that would widen access or send more than was asked for.
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::{
    helpers::{error_codes, receiver::Receiver, spawn, TestApp},
    projects::create_project,
    sharing::share,
    webhooks::{create_endpoint, local},
};

/// Runs one statement straight against the database, bypassing the typed columns.
async fn raw(app: &TestApp, sql: &str) {
    app.app
        .svc
        .db
        .write
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

const VIEW: &str =
    "query($t: String!) { sharedLink(token: $t) { permission project { name content } } }";

#[tokio::test]
async fn an_unknown_audience_is_an_error_not_anyone() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&app, &ana, "Secret roadmap").await;
    let (_, token) = share(&app, &ana, &project, "VIEW", Some("ORGANIZATION")).await;
    // Before the link is ever opened, so no cached copy of the row hides the change.
    raw(&app, "UPDATE shared_links SET audience = 'everyone'").await;
    let body = app.gql(None, VIEW, json!({ "t": token })).await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
    assert!(!body.to_string().contains("Secret roadmap"), "{body}");
    // The owner's own listing fails loudly too, rather than showing a made-up audience.
    let body = app
        .gql(
            Some(&ana.token),
            "query($p: ID!) { project(id: $p) { sharedLinks { audience } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
    assert!(!body.to_string().contains("ANYONE"), "{body}");
}

#[tokio::test]
async fn an_unknown_role_or_permission_is_an_error() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, token) = share(&app, &ana, &project, "VIEW", None).await;

    // Bo is the only "member" row: his membership in Ana's workspace.
    raw(
        &app,
        "UPDATE memberships SET role = 'superadmin' WHERE role = 'member'",
    )
    .await;
    let body = app
        .gql(
            Some(&bo.token),
            "query($o: ID!) { organization(id: $o) { name viewerRole } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
    let rename = app
        .gql(
            Some(&bo.token),
            "mutation($o: ID!) { renameOrganization(id: $o, name: \"Bo's now\") { organization { name } userErrors { code } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert!(!rename.to_string().contains("Bo's now"), "{rename}");

    raw(&app, "UPDATE shared_links SET permission = 'admin'").await;
    let body = app.gql(None, VIEW, json!({ "t": token })).await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
    assert!(!body.to_string().contains("Roadmap"), "{body}");
}

#[tokio::test]
async fn an_unknown_acquisition_source_or_activity_type_is_an_error() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    create_project(&app, &ana, "Roadmap").await;
    raw(&app, "UPDATE users SET acquisition_source = 'billboard'").await;
    let body = app
        .gql(Some(&ana.token), "{ me { acquisitionSource } }", json!({}))
        .await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
    assert!(!body.to_string().contains("ORGANIC"), "{body}");

    raw(&app, "UPDATE users SET acquisition_source = 'organic'").await;
    raw(
        &app,
        "UPDATE activity_events SET event_type = 'PROJECT_STOLEN'",
    )
    .await;
    let body = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity { nodes { type } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
}

const ENDPOINTS: &str = "query($o: ID!) { organization(id: $o) { webhookEndpoints { url eventTypes deliveries { nodes { status } } } } }";

#[tokio::test]
async fn an_unknown_delivery_status_is_an_error_not_pending() {
    let app = crate::helpers::spawn_with(local).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (endpoint, _) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/a"), &[]).await;
    crate::webhooks::send_test(&app, &ana.token, &endpoint).await;
    rx.wait_for(1).await;
    // The dispatcher records the answer after the receiver saw it: wait for that write,
    // which is the delivery's last, before overwriting its status.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = app
            .gql(Some(&ana.token), ENDPOINTS, json!({ "o": ana.org_id }))
            .await;
        let status = &body["data"]["organization"]["webhookEndpoints"][0]["deliveries"]["nodes"][0]
            ["status"];
        if status == "SUCCEEDED" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    raw(&app, "UPDATE webhook_deliveries SET status = 'retrying'").await;
    let body = app
        .gql(Some(&ana.token), ENDPOINTS, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
    assert!(!body.to_string().contains("PENDING"), "{body}");
}

#[tokio::test]
async fn a_malformed_event_type_filter_sends_nothing_rather_than_everything() {
    let app = crate::helpers::spawn_with(local).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let types = ["invitation.sent"];
    create_endpoint(
        &app,
        &ana.token,
        Some(&ana.org_id),
        &rx.url("/good"),
        &types,
    )
    .await;
    create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/bad"), &types).await;
    // A JSON string instead of an array of event types.
    raw(
        &app,
        "UPDATE webhook_endpoints SET event_types = '\"everything\"' WHERE url LIKE '%/bad'",
    )
    .await;

    let invite = app
        .gql(
            Some(&ana.token),
            "mutation($o: ID!) { createInvitations(input: {organizationId: $o, emails: [\"bo@example.com\"], role: MEMBER}) { userErrors { code } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        invite["data"]["createInvitations"]["userErrors"],
        json!([]),
        "{invite}"
    );
    // Both endpoints are fanned out in the same transaction: once the good one has its
    // delivery, the bad one has had its chance.
    rx.wait_for(1).await;
    assert_eq!(rx.received_at("/good").len(), 1);
    let deliveries = entity::webhook_deliveries::Entity::find()
        .count(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(
        deliveries, 1,
        "no delivery for the endpoint with a malformed filter"
    );
    assert!(rx.received_at("/bad").is_empty());

    let body = app
        .gql(Some(&ana.token), ENDPOINTS, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(error_codes(&body), vec!["INTERNAL"], "{body}");
}
