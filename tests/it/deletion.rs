//! Leaving for good: account deletion leaves anonymous facts, the last owner is protected,
//! organization deletion waits for its grace period (and can be undone), data export.
use chrono::Duration;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    accounts::PASSWORD,
    helpers::{error_codes, spawn, spawn_with, user_error_codes, TestApp, TestUser},
    invitations::{emailed_token, token_of},
    projects::create_project,
    sharing::share,
};

const INVITE: &str = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { invitations { id url status } userErrors { code } } }";
const DELETE_ACCOUNT: &str = "mutation($p: String!) { deleteAccount(password: $p) { deletedId userErrors { code message } } }";

/// Bo joins Ana's workspace through the link in his invitation email.
async fn join(app: &TestApp, ana: &TestUser, name: &str, email: &str) -> TestUser {
    let p = app
        .gql(
            Some(&ana.token),
            INVITE,
            json!({ "o": ana.org_id, "e": [email] }),
        )
        .await;
    let token = emailed_token(app, &p["data"]["createInvitations"]["invitations"][0]).await;
    let s = app
        .gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } organization { id } userErrors { code } } }",
            json!({ "i": { "email": email, "password": PASSWORD, "name": name, "inviteToken": token } }))
        .await;
    let s = &s["data"]["signUp"];
    assert_eq!(s["userErrors"], json!([]), "{s}");
    TestUser {
        token: s["token"].as_str().unwrap().into(),
        id: s["user"]["id"].as_str().unwrap().into(),
        org_id: s["organization"]["id"].as_str().unwrap().into(),
        email: email.into(),
        name: name.into(),
    }
}

async fn feed(app: &TestApp, u: &TestUser) -> Vec<String> {
    let b = app
        .gql(Some(&u.token), "query($o: ID!) { organization(id: $o) { activity(first: 100) { nodes { summary } } } }", json!({ "o": u.org_id }))
        .await;
    b["data"]["organization"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["summary"].as_str().unwrap().to_string())
        .collect()
}

fn uuid(id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(id.split_once('_').unwrap().1).unwrap()
}

#[tokio::test]
async fn a_deleted_account_leaves_anonymous_facts_and_nothing_to_reach_it_by() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = join(&app, &ana, "Bo", "bo@example.com").await;
    let project = create_project(&app, &bo, "Bo's plan").await;
    app.gql(
        Some(&bo.token),
        "mutation($p: ID!) { addComment(projectId: $p, body: \"Mine\") { comment { id } } }",
        json!({ "p": project }),
    )
    .await;
    let (_, link) = share(&app, &bo, &project, "VIEW", None).await;
    let pending = app
        .gql(
            Some(&bo.token),
            INVITE,
            json!({ "o": ana.org_id, "e": ["cy@example.com"] }),
        )
        .await;
    let pending_token = token_of(&pending["data"]["createInvitations"]["invitations"][0]);
    assert!(feed(&app, &ana)
        .await
        .iter()
        .any(|s| s.contains("bo@example.com")));

    let wrong = app
        .gql(
            Some(&bo.token),
            DELETE_ACCOUNT,
            json!({ "p": "not my password" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&wrong["data"]["deleteAccount"]),
        vec!["INVALID_CREDENTIALS"]
    );
    let d = app
        .gql(Some(&bo.token), DELETE_ACCOUNT, json!({ "p": PASSWORD }))
        .await;
    assert_eq!(
        d["data"]["deleteAccount"]["deletedId"],
        bo.id.as_str(),
        "{d}"
    );

    // Nothing reaches the account any more.
    let me = app.gql(Some(&bo.token), "{ me { id } }", json!({})).await;
    assert_eq!(error_codes(&me), vec!["UNAUTHENTICATED"]);
    let login = app
        .gql(None, "mutation { logIn(input: {email: \"bo@example.com\", password: \"correct horse battery\"}) { token userErrors { code } } }", json!({}))
        .await;
    assert_eq!(
        user_error_codes(&login["data"]["logIn"]),
        vec!["INVALID_CREDENTIALS"]
    );
    let members = app
        .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { members { totalCount nodes { user { id } } } invitations { nodes { email status acceptedBy { name } } } } }", json!({ "o": ana.org_id }))
        .await;
    let org = &members["data"]["organization"];
    assert_eq!(org["members"]["totalCount"], 1);
    let invitations = org["invitations"]["nodes"].as_array().unwrap();
    let accepted = invitations
        .iter()
        .find(|i| i["status"] == "ACCEPTED")
        .unwrap();
    assert_eq!(accepted["acceptedBy"]["name"], "Deleted user");
    assert!(accepted["email"]
        .as_str()
        .unwrap()
        .ends_with("@deleted.invalid"));
    assert!(invitations
        .iter()
        .any(|i| i["email"] == "cy@example.com" && i["status"] == "REVOKED"));
    let preview = app
        .gql(
            None,
            "query($t: String!) { invitation(token: $t) { status } }",
            json!({ "t": pending_token }),
        )
        .await;
    assert_eq!(preview["data"]["invitation"]["status"], "REVOKED");
    // No name, no address in the feed.
    for s in feed(&app, &ana).await {
        assert!(
            !s.contains("bo@example.com") && !s.starts_with("Bo "),
            "{s}"
        );
    }
    // What Bo made stays the organization's, by an anonymous author.
    let view = app
        .gql(None, "query($t: String!) { sharedLink(token: $t) { sharedBy project { comments { nodes { body authorName } } } } }", json!({ "t": link }))
        .await;
    let view = &view["data"]["sharedLink"];
    assert_eq!(view["sharedBy"], "Deleted user");
    assert_eq!(
        view["project"]["comments"]["nodes"][0]["authorName"],
        "Deleted user"
    );

    // The row keeps the facts of the signup, and nothing personal.
    let db = &app.app.svc.db.read;
    let row = entity::users::Entity::find_by_id(uuid(&bo.id))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.deleted_at.is_some());
    assert_eq!(row.name, "Deleted user");
    assert!(row.email.ends_with("@deleted.invalid"));
    assert_eq!(row.acquisition_source.as_str(), "invite");
    assert_eq!(
        row.invited_by_user_id,
        Some(kfactor::domain::ids::UserId(uuid(&ana.id)))
    );
    assert!(row.invite_token_id.is_some());
    assert_eq!(
        entity::invitation_sends::Entity::find()
            .count(db)
            .await
            .unwrap(),
        2
    );
    let sessions = entity::sessions::Entity::find()
        .filter(entity::sessions::Column::UserId.eq(row.id))
        .count(db)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    // The address is free for a new account.
    app.sign_up("Bo again", "bo@example.com").await;
}

#[tokio::test]
async fn the_last_owner_of_a_shared_organization_keeps_the_account_until_someone_else_owns_it() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = join(&app, &ana, "Bo", "bo@example.com").await;
    let side = app
        .gql(
            Some(&ana.token),
            "mutation { createOrganization(name: \"Side\") { organization { id } } }",
            json!({}),
        )
        .await["data"]["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let side_user = TestUser {
        org_id: side.clone(),
        ..ana.clone()
    };
    create_project(&app, &side_user, "Side project").await;

    let d = app
        .gql(Some(&ana.token), DELETE_ACCOUNT, json!({ "p": PASSWORD }))
        .await;
    let d = &d["data"]["deleteAccount"];
    assert_eq!(user_error_codes(d), vec!["LAST_OWNER"]);
    assert!(d["userErrors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Ana's workspace"));
    let me = app
        .gql(
            Some(&ana.token),
            "{ me { memberships { organization { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"]["memberships"].as_array().unwrap().len(),
        2,
        "nothing happened"
    );

    app.gql(Some(&ana.token), "mutation($o: ID!, $u: ID!) { changeMemberRole(organizationId: $o, userId: $u, role: OWNER) { userErrors { code } } }", json!({ "o": ana.org_id, "u": bo.id }))
        .await;
    let d = app
        .gql(Some(&ana.token), DELETE_ACCOUNT, json!({ "p": PASSWORD }))
        .await;
    assert_eq!(d["data"]["deleteAccount"]["userErrors"], json!([]), "{d}");
    // The workspace Ana had alone went with her; the shared one stays Bo's.
    let db = &app.app.svc.db.read;
    let side_row = entity::organizations::Entity::find_by_id(uuid(&side))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(side_row.deleted_at.is_some());
    let projects = entity::projects::Entity::find()
        .filter(entity::projects::Column::OrganizationId.eq(uuid(&side)))
        .count(db)
        .await
        .unwrap();
    assert_eq!(projects, 0);
    let o = app
        .gql(
            Some(&bo.token),
            "query($o: ID!) { organization(id: $o) { members { totalCount } viewerRole } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(o["data"]["organization"]["members"]["totalCount"], 1);
    assert_eq!(o["data"]["organization"]["viewerRole"], "OWNER");
}

#[tokio::test]
async fn an_organization_is_deleted_after_its_grace_period_unless_an_owner_restores_it() {
    let app = spawn_with(|c| {
        c.webhook_allow_http = true;
        c.webhook_allow_private = true;
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let bo = TestUser {
        org_id: ana.org_id.clone(),
        ..bo
    };
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, link) = share(&app, &ana, &project, "VIEW", None).await;
    let view = "query($t: String!) { sharedLink(token: $t) { permission } }";
    app.gql(None, view, json!({ "t": link })).await;
    let inv = app
        .gql(
            Some(&ana.token),
            INVITE,
            json!({ "o": ana.org_id, "e": ["cy@example.com"] }),
        )
        .await;
    let inv_token = token_of(&inv["data"]["createInvitations"]["invitations"][0]);
    app.enable_feature(&ana.org_id, "webhooks").await;
    let ep = app
        .gql(Some(&ana.token), "mutation($o: ID!) { createWebhookEndpoint(input: {organizationId: $o, url: \"http://127.0.0.1:9/hook\"}) { endpoint { id } userErrors { code } } }", json!({ "o": ana.org_id }))
        .await;
    assert!(
        ep["data"]["createWebhookEndpoint"]["endpoint"]["id"].is_string(),
        "{ep}"
    );

    let delete = "mutation($o: ID!) { deleteOrganization(id: $o) { organization { id deletionScheduledFor } userErrors { code } } }";
    let restore = "mutation($o: ID!) { restoreOrganization(id: $o) { organization { deletionScheduledFor } userErrors { code } } }";
    let by_member = app
        .gql(Some(&bo.token), delete, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(
        user_error_codes(&by_member["data"]["deleteOrganization"]),
        vec!["PERMISSION_DENIED"]
    );
    let d = app
        .gql(Some(&ana.token), delete, json!({ "o": ana.org_id }))
        .await;
    let due = d["data"]["deleteOrganization"]["organization"]["deletionScheduledFor"]
        .as_str()
        .unwrap()
        .to_string();
    let due: chrono::DateTime<chrono::Utc> = due.parse().unwrap();
    assert_eq!(due, app.clock_now() + Duration::days(14));

    // During the grace period the public doors are closed; members still work in it.
    let v = app.gql(None, view, json!({ "t": link })).await;
    assert_eq!(error_codes(&v), vec!["NOT_FOUND"]);
    let p = app
        .gql(
            None,
            "query($t: String!) { invitation(token: $t) { status } }",
            json!({ "t": inv_token }),
        )
        .await;
    assert_eq!(error_codes(&p), vec!["NOT_FOUND"]);
    let o = app
        .gql(
            Some(&bo.token),
            "query($o: ID!) { organization(id: $o) { projects { totalCount } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(o["data"]["organization"]["projects"]["totalCount"], 1);
    // An owner can change their mind.
    let r = app
        .gql(Some(&ana.token), restore, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(
        r["data"]["restoreOrganization"]["organization"]["deletionScheduledFor"],
        Value::Null
    );
    let v = app.gql(None, view, json!({ "t": link })).await;
    assert_eq!(v["data"]["sharedLink"]["permission"], "VIEW");

    app.gql(Some(&ana.token), delete, json!({ "o": ana.org_id }))
        .await;
    app.clock.advance(Duration::days(14) - Duration::seconds(1));
    assert_eq!(
        kfactor::domain::deletion::purge_due(&app.app.svc)
            .await
            .unwrap(),
        0
    );
    app.clock.advance(Duration::seconds(1));
    assert_eq!(
        kfactor::domain::deletion::purge_due(&app.app.svc)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        kfactor::domain::deletion::purge_due(&app.app.svc)
            .await
            .unwrap(),
        0
    );

    let o = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { name } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&o), vec!["NOT_FOUND"]);
    let me = app
        .gql(
            Some(&bo.token),
            "{ me { activeOrganization { id } memberships { organization { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"]["memberships"].as_array().unwrap().len(),
        1,
        "Bo keeps his own workspace"
    );
    assert_eq!(
        me["data"]["me"]["activeOrganization"]["id"],
        bo_own_org(&app, &bo).await
    );
    // Content and integrations are gone; the anonymous facts of growth stay.
    let db = &app.app.svc.db.read;
    let org = uuid(&ana.org_id);
    let row = entity::organizations::Entity::find_by_id(org)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.name, "Deleted organization");
    assert!(row.deleted_at.is_some());
    assert_eq!(
        entity::projects::Entity::find()
            .filter(entity::projects::Column::OrganizationId.eq(org))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        entity::shared_links::Entity::find()
            .filter(entity::shared_links::Column::OrganizationId.eq(org))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        entity::link_visits::Entity::find()
            .filter(entity::link_visits::Column::OrganizationId.eq(org))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        entity::webhook_endpoints::Entity::find()
            .filter(entity::webhook_endpoints::Column::OrganizationId.eq(org))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        entity::memberships::Entity::find()
            .filter(entity::memberships::Column::OrganizationId.eq(org))
            .count(db)
            .await
            .unwrap(),
        0
    );
    let invs = entity::invitations::Entity::find()
        .filter(entity::invitations::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap();
    assert_eq!(invs.len(), 1, "the invitation stays a fact");
    assert!(invs[0].email.ends_with("@deleted.invalid"));
    assert_eq!(invs[0].status.as_str(), "revoked");
    assert_eq!(
        entity::invitation_sends::Entity::find()
            .count(db)
            .await
            .unwrap(),
        1
    );
}

async fn bo_own_org(app: &TestApp, bo: &TestUser) -> Value {
    let me = app
        .gql(
            Some(&bo.token),
            "{ me { memberships { organization { id } } } }",
            json!({}),
        )
        .await;
    me["data"]["me"]["memberships"][0]["organization"]["id"].clone()
}

#[tokio::test]
async fn an_export_holds_the_callers_profile_memberships_projects_comments_and_sessions() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = join(&app, &ana, "Bo", "bo@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let comment =
        "mutation($p: ID!, $b: String!) { addComment(projectId: $p, body: $b) { comment { id } } }";
    app.gql(
        Some(&ana.token),
        comment,
        json!({ "p": project, "b": "Ana's note" }),
    )
    .await;
    app.gql(
        Some(&bo.token),
        comment,
        json!({ "p": project, "b": "Bo's note" }),
    )
    .await;
    let e = app
        .gql(
            Some(&ana.token),
            "mutation { exportMyData { export userErrors { code } } }",
            json!({}),
        )
        .await;
    let doc = &e["data"]["exportMyData"]["export"];
    assert_eq!(doc["format"], "kfactor.export.v1");
    assert_eq!(doc["profile"]["email"], "ana@example.com");
    assert_eq!(doc["profile"]["acquisitionSource"], "ORGANIC");
    assert_eq!(doc["memberships"][0]["organizationId"], ana.org_id.as_str());
    assert_eq!(doc["memberships"][0]["role"], "OWNER");
    assert_eq!(doc["projects"][0]["name"], "Roadmap");
    let bodies: Vec<&str> = doc["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, vec!["Ana's note"], "only the caller's own comments");
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
    assert!(doc["sessions"][0]["createdAt"].is_string());
    assert!(!doc.to_string().contains("bo@example.com"));
    let anon = app
        .gql(None, "mutation { exportMyData { export } }", json!({}))
        .await;
    assert_eq!(error_codes(&anon), vec!["UNAUTHENTICATED"]);
}
