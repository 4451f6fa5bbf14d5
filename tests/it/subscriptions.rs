//! Live activity over graphql-transport-ws: what reaches whom, and that a stream never
//! outlives the access it was authorized with.
use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{
    spawn, spawn_on, spawn_with,
    ws::{closed, connect, next_json, open, send, subscribe, wait_live, Ws, ACTIVITY},
    TestApp,
};

/// The end of a stream that the server ended: its last result's error code, then
/// `complete`.
async fn ended_with(ws: &mut Ws, id: &str) -> String {
    let last = next_json(ws).await;
    assert_eq!(
        (last["type"].as_str(), last["id"].as_str()),
        (Some("next"), Some(id)),
        "{last}"
    );
    let code = last["payload"]["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error as the last result: {last}"))
        .to_string();
    let done = next_json(ws).await;
    assert_eq!(done, json!({ "id": id, "type": "complete" }));
    code
}

async fn log_in(app: &TestApp, email: &str) -> String {
    let body = app
        .gql(
            None,
            "mutation($e: String!) { logIn(input: {email: $e, password: \"correct horse battery\"}) { token } }",
            json!({ "e": email }),
        )
        .await;
    body["data"]["logIn"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string()
}

async fn comment(app: &TestApp, token: &str, project: &str, text: &str) {
    let body = app
        .gql(
            Some(token),
            "mutation($p: ID!, $b: String!) { addComment(projectId: $p, body: $b) { comment { id } } }",
            json!({ "p": project, "b": text }),
        )
        .await;
    assert!(body["data"]["addComment"]["comment"].is_object(), "{body}");
}

#[tokio::test]
async fn members_receive_committed_activity_of_their_organization_only() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bob = app.sign_up("Bob", "bob@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    // Bob's organization is busy first; none of it reaches Ana's stream.
    crate::projects::create_project(&app, &bob, "Bob's secret").await;
    crate::projects::create_project(&app, &ana, "Roadmap").await;
    let event = next_json(&mut ws).await;
    assert_eq!(event["type"], "next", "{event}");
    let e = &event["payload"]["data"]["activity"];
    assert_eq!(e["type"], "PROJECT_CREATED");
    assert_eq!(e["organizationId"], ana.org_id.as_str());
    assert_eq!(e["actor"]["displayName"], "Ana");
    // One channel: Ana's organization (Bob's has no subscriber, so none exists for it).
    assert_eq!(app.app.svc.bus.live_counts(), (1, 1));
}

/// Visits are committed by the visits worker, through the same commit hook as every other
/// write: a new visitor reaches live subscribers only after their visit committed.
#[tokio::test]
async fn a_new_visitor_of_a_shared_link_shows_up_live() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = crate::projects::create_project(&app, &ana, "Roadmap").await;
    let (link_id, token) = crate::sharing::share(&app, &ana, &project, "VIEW", None).await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;

    let open =
        "query($t: String!, $v: String) { sharedLink(token: $t, visitorId: $v) { permission } }";
    // The subscription starts asynchronously: new visitors come until one is seen.
    let mut visitor = 0;
    let event = loop {
        visitor += 1;
        assert!(
            visitor <= 20,
            "no SHARED_LINK_VISITED event after 20 new visitors"
        );
        let v = format!("guest-{visitor:02}");
        let body = app.gql(None, open, json!({ "t": token, "v": v })).await;
        assert_eq!(body["data"]["sharedLink"]["permission"], "VIEW", "{body}");
        match tokio::time::timeout(Duration::from_millis(300), next_json(&mut ws)).await {
            Ok(v) => break v,
            Err(_) => continue,
        }
    };
    assert_eq!(event["type"], "next", "{event}");
    let e = &event["payload"]["data"]["activity"];
    assert_eq!(e["type"], "SHARED_LINK_VISITED", "{event}");
    assert_eq!(e["organizationId"], ana.org_id.as_str());
    assert_eq!(e["summary"], "Someone new opened a shared link");
    let feed = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity(first: 5) { nodes { type resourceType resourceId data } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let newest = &feed["data"]["organization"]["activity"]["nodes"][0];
    assert_eq!(newest["type"], "SHARED_LINK_VISITED", "{feed}");
    assert_eq!(newest["data"]["sharedLinkId"], link_id.as_str(), "{feed}");
    assert_eq!(newest["resourceType"], "PROJECT", "{feed}");
    assert_eq!(newest["resourceId"], project.as_str(), "{feed}");
}

#[tokio::test]
async fn subscriptions_need_membership() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;

    let mut ws = connect(&app, Some(&eve.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(msg["payload"]["data"], json!(null), "{msg}");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );

    let mut ws = connect(&app, None).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{msg}"
    );
}

/// graphql-transport-ws: a refused `connection_init` (a bad or expired token) closes the
/// socket with 4403 Forbidden, so clients can tell "log in again" from a protocol error.
#[tokio::test]
async fn a_bad_token_closes_the_socket_with_4403() {
    let app = spawn().await;
    let mut ws = open(&app).await;
    let init = json!({ "type": "connection_init", "payload": { "authorization": "Bearer not-a-session" } });
    send(&mut ws, init).await;
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.starts_with("Forbidden"), "{reason}");
}

#[tokio::test]
async fn removal_from_the_organization_ends_the_stream_at_once() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mo = app.sign_up("Mo", "mo@example.com").await;
    app.add_member(&ana.org_id, &mo.id, "member").await;
    let mut ws = connect(&app, Some(&mo.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(organizationId: $o, userId: $u) { userErrors { code } } }";
    let body = app
        .gql(
            Some(&ana.token),
            remove,
            json!({ "o": ana.org_id, "u": mo.id }),
        )
        .await;
    assert_eq!(
        body["data"]["removeMember"]["userErrors"],
        json!([]),
        "{body}"
    );
    // Nothing after the removal, not even the removal itself: the stream ends.
    assert_eq!(ended_with(&mut ws, "1").await, "FORBIDDEN");
    wait_live(&app, 0).await;
    // The socket stays open for what Mo may still see.
    subscribe(&mut ws, "2", ACTIVITY, json!({ "o": mo.org_id })).await;
    wait_live(&app, 1).await;
}

#[tokio::test]
async fn log_out_ends_that_sessions_streams_and_log_out_all_ends_every_one() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let second = log_in(&app, "ana@example.com").await;
    let third = log_in(&app, "ana@example.com").await;
    let mut one = connect(&app, Some(&ana.token)).await;
    let mut two = connect(&app, Some(&second)).await;
    subscribe(&mut one, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    subscribe(&mut two, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 2).await;

    let body = app
        .gql(Some(&ana.token), "mutation { logOut }", json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(ended_with(&mut one, "1").await, "UNAUTHENTICATED");
    wait_live(&app, 1).await;
    // The other session's stream is untouched and still delivers.
    let still_in = crate::helpers::TestUser {
        token: second.clone(),
        ..ana.clone()
    };
    crate::projects::create_project(&app, &still_in, "Roadmap").await;
    let m = next_json(&mut two).await;
    assert_eq!(
        m["payload"]["data"]["activity"]["type"], "PROJECT_CREATED",
        "{m}"
    );

    let body = app
        .gql(Some(&third), "mutation { logOutAll }", json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(ended_with(&mut two, "1").await, "UNAUTHENTICATED");
    wait_live(&app, 0).await;
}

#[tokio::test]
async fn an_expired_session_ends_its_streams() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    // Within its lifetime nothing ends.
    app.advance(chrono::Duration::days(1));
    crate::projects::create_project(&app, &ana, "Roadmap").await;
    let m = next_json(&mut ws).await;
    assert_eq!(
        m["payload"]["data"]["activity"]["type"], "PROJECT_CREATED",
        "{m}"
    );
    let ttl = app.app.svc.config.session_ttl_days;
    app.advance(chrono::Duration::days(ttl));
    assert_eq!(ended_with(&mut ws, "1").await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_and_ended_not_skipped_ahead() {
    let app = spawn_with(|c| c.realtime.ws_subscriber_backlog = 2).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "pro").await;
    let mut ws = connect(&app, Some(&ana.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    // Five invitations commit five events at once: more than the subscriber may lag.
    let emails: Vec<String> = (0..5).map(|i| format!("p{i}@example.com")).collect();
    let invite = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { userErrors { code } } }";
    let body = app
        .gql(
            Some(&ana.token),
            invite,
            json!({ "o": ana.org_id, "e": emails }),
        )
        .await;
    assert_eq!(
        body["data"]["createInvitations"]["userErrors"],
        json!([]),
        "{body}"
    );
    let last = next_json(&mut ws).await;
    assert_eq!(
        last["payload"]["errors"][0]["extensions"]["code"], "LAGGED",
        "{last}"
    );
    assert!(last["payload"]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("events behind"));
    assert_eq!(
        next_json(&mut ws).await,
        json!({ "id": "1", "type": "complete" })
    );
}

const SHARED: &str = "subscription($t: String!) { sharedActivity(token: $t) { type summary } }";

#[tokio::test]
async fn a_revoked_or_expired_link_ends_its_shared_activity() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = crate::projects::create_project(&app, &ana, "Roadmap").await;
    let (link, token) = crate::sharing::share(&app, &ana, &project, "VIEW", None).await;
    let mut guest = connect(&app, None).await;
    subscribe(&mut guest, "s", SHARED, json!({ "t": token })).await;
    wait_live(&app, 1).await;
    comment(&app, &ana.token, &project, "First").await;
    let m = next_json(&mut guest).await;
    assert_eq!(
        m["payload"]["data"]["sharedActivity"]["type"], "COMMENT_ADDED",
        "{m}"
    );

    let revoke = "mutation($l: ID!) { revokeSharedLink(id: $l) { userErrors { code } } }";
    let body = app
        .gql(Some(&ana.token), revoke, json!({ "l": link }))
        .await;
    assert_eq!(
        body["data"]["revokeSharedLink"]["userErrors"],
        json!([]),
        "{body}"
    );
    assert_eq!(ended_with(&mut guest, "s").await, "LINK_REVOKED");

    // A link that expires ends its streams when it does.
    let expires = (app.clock_now() + chrono::Duration::hours(1)).to_rfc3339();
    let create = "mutation($p: ID!, $e: DateTime) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: VIEW, expiresAt: $e}) { sharedLink { url } } }";
    let body = app
        .gql(
            Some(&ana.token),
            create,
            json!({ "p": project, "e": expires }),
        )
        .await;
    let url = body["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let token = url.rsplit('/').next().unwrap();
    subscribe(&mut guest, "e", SHARED, json!({ "t": token })).await;
    wait_live(&app, 1).await;
    app.advance(chrono::Duration::hours(2));
    assert_eq!(ended_with(&mut guest, "e").await, "LINK_EXPIRED");
}

/// Scaled out on PostgreSQL: a subscriber connected to one instance hears of changes
/// committed through another.
#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn subscribers_on_one_instance_hear_changes_made_through_another() {
    crate::helpers::require_postgres();
    let a = spawn().await;
    let b = spawn_on(&a.db_url, |_| {}).await;
    let ana = a.sign_up("Ana", "ana@example.com").await;
    let project = crate::projects::create_project(&a, &ana, "Roadmap").await;
    let mut ws = connect(&b, Some(&ana.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&b, 1).await;
    // Events of the signup and the project may still be on their way to B (cross-instance
    // delivery is asynchronous) and come first.
    comment(&a, &ana.token, &project, "From A").await;
    loop {
        let event = next_json(&mut ws).await;
        assert_eq!(event["type"], "next", "{event}");
        let e = &event["payload"]["data"]["activity"];
        assert_eq!(e["organizationId"], ana.org_id.as_str());
        if e["type"] == "COMMENT_ADDED" {
            return;
        }
        assert!(
            e["type"] == "MEMBER_JOINED" || e["type"] == "PROJECT_CREATED",
            "{event}"
        );
    }
}

/// Scaled out on PostgreSQL: removal and log-out through one instance end the streams held
/// by another.
#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn access_changes_through_one_instance_end_streams_on_another() {
    crate::helpers::require_postgres();
    let a = spawn().await;
    let b = spawn_on(&a.db_url, |_| {}).await;
    let ana = a.sign_up("Ana", "ana@example.com").await;
    let mo = a.sign_up("Mo", "mo@example.com").await;
    a.add_member(&ana.org_id, &mo.id, "member").await;
    let mut mo_ws = connect(&b, Some(&mo.token)).await;
    let mut ana_ws = connect(&b, Some(&ana.token)).await;
    subscribe(&mut mo_ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    subscribe(&mut ana_ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&b, 2).await;

    let remove = "mutation($o: ID!, $u: ID!) { removeMember(organizationId: $o, userId: $u) { userErrors { code } } }";
    let body = a
        .gql(
            Some(&ana.token),
            remove,
            json!({ "o": ana.org_id, "u": mo.id }),
        )
        .await;
    assert_eq!(
        body["data"]["removeMember"]["userErrors"],
        json!([]),
        "{body}"
    );
    // Mo's stream may first deliver events committed before the removal; then it ends.
    loop {
        let m = next_json(&mut mo_ws).await;
        if m["payload"]["errors"].is_array() {
            assert_eq!(
                m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{m}"
            );
            assert_eq!(next_json(&mut mo_ws).await["type"], "complete");
            break;
        }
        assert_ne!(
            m["payload"]["data"]["activity"]["type"], "MEMBER_REMOVED",
            "{m}"
        );
    }
    let body = a
        .gql(Some(&ana.token), "mutation { logOut }", json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    loop {
        let m = next_json(&mut ana_ws).await;
        if m["payload"]["errors"].is_array() {
            assert_eq!(
                m["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{m}"
            );
            break;
        }
    }
    wait_live(&b, 0).await;
}

/// On PostgreSQL, what was announced while an instance's listener was disconnected is lost:
/// when it reconnects, every stream it holds checks its access again.
#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn a_reconnecting_listener_rechecks_every_stream() {
    crate::helpers::require_postgres();
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mo = app.sign_up("Mo", "mo@example.com").await;
    app.add_member(&ana.org_id, &mo.id, "member").await;
    let mut ws = connect(&app, Some(&mo.token)).await;
    subscribe(&mut ws, "1", ACTIVITY, json!({ "o": ana.org_id })).await;
    wait_live(&app, 1).await;
    // A change whose announcement never arrives: the membership goes behind the server's
    // back, and the listener's connection is cut.
    let db = sea_orm::Database::connect(&app.db_url).await.unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "DELETE FROM memberships WHERE user_id = $1::uuid AND organization_id = $2::uuid",
        [uuid_of(&mo.id).into(), uuid_of(&ana.org_id).into()],
    ))
    .await
    .unwrap();
    let cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
               WHERE datname = current_database() AND query LIKE 'LISTEN%'";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = db
            .query_all_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                cut,
            ))
            .await
            .unwrap();
        if !rows.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no listener connection found"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ended_with(&mut ws, "1").await, "FORBIDDEN");
}

fn uuid_of(id: &str) -> uuid::Uuid {
    let (_, hex) = id.split_once('_').unwrap();
    uuid::Uuid::try_parse(hex).unwrap()
}
