//! Projects, comments, activation, tenancy and mergeOrganization.
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{error_codes, spawn, user_error_codes, TestApp, TestUser};

pub const CREATE: &str = "mutation($o: ID!, $n: String!, $c: String) { createProject(input: {organizationId: $o, name: $n, content: $c}) {
  project { id name content createdBy { displayName user { id } } organization { id } } userErrors { code message field } } }";

pub async fn create_project(app: &TestApp, by: &TestUser, name: &str) -> String {
    let body = app
        .gql(
            Some(&by.token),
            CREATE,
            json!({ "o": by.org_id, "n": name, "c": "Hello" }),
        )
        .await;
    let p = &body["data"]["createProject"];
    assert_eq!(p["userErrors"], json!([]), "{body}");
    p["project"]["id"].as_str().unwrap().to_string()
}

async fn activated_at(app: &TestApp, u: &TestUser) -> Value {
    app.gql(Some(&u.token), "{ me { activatedAt } }", json!({}))
        .await["data"]["me"]["activatedAt"]
        .clone()
}

#[tokio::test]
async fn projects_and_comments_for_members_with_activation_once() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    assert_eq!(activated_at(&app, &ana).await, json!(null));
    let body = app
        .gql(
            Some(&ana.token),
            CREATE,
            json!({ "o": ana.org_id, "n": " Roadmap ", "c": "Q1: ship" }),
        )
        .await;
    let p = &body["data"]["createProject"]["project"];
    assert_eq!(p["name"], "Roadmap");
    assert_eq!(p["createdBy"]["displayName"], "Ana");
    let id = p["id"].as_str().unwrap();
    let first = activated_at(&app, &ana).await;
    assert!(first.is_string(), "the first project activates");

    app.clock.advance(chrono::Duration::hours(1));
    create_project(&app, &ana, "Second").await;
    let c = app
        .gql(Some(&ana.token), "mutation($p: ID!) { addComment(projectId: $p, body: \"Looks good\") { comment { body author { displayName } } userErrors { code } } }", json!({ "p": id }))
        .await;
    assert_eq!(
        c["data"]["addComment"]["comment"]["author"]["displayName"],
        "Ana"
    );
    assert_eq!(
        activated_at(&app, &ana).await,
        first,
        "activation is recorded once"
    );
    let hooks = entity::webhook_messages::Entity::find()
        .filter(entity::webhook_messages::Column::EventType.eq("user.activated"))
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].payload["data"]["user_id"], ana.id.as_str());

    let u = app
        .gql(Some(&ana.token), "mutation($p: ID!) { updateProject(input: {id: $p, content: \"Q1: shipped\"}) { project { name content updatedAt createdAt } userErrors { code } } }", json!({ "p": id }))
        .await;
    let up = &u["data"]["updateProject"]["project"];
    assert_eq!(up["name"], "Roadmap");
    assert_eq!(up["content"], "Q1: shipped");
    assert_ne!(up["updatedAt"], up["createdAt"]);

    let q = app
        .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { projects { totalCount nodes { name comments { totalCount nodes { body } } } } activity { nodes { type } } } }", json!({ "o": ana.org_id }))
        .await;
    let o = &q["data"]["organization"];
    assert_eq!(o["projects"]["totalCount"], 2);
    assert_eq!(
        o["projects"]["nodes"][1]["comments"]["nodes"][0]["body"],
        "Looks good"
    );
    let types: Vec<&str> = o["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..4],
        &[
            "PROJECT_UPDATED",
            "COMMENT_ADDED",
            "PROJECT_CREATED",
            "PROJECT_CREATED"
        ]
    );

    // Size limits.
    for (n, c) in [
        ("", "x".to_string()),
        (&"n".repeat(201)[..], "x".to_string()),
        ("ok", "c".repeat(100_001)),
    ] {
        let body = app
            .gql(
                Some(&ana.token),
                CREATE,
                json!({ "o": ana.org_id, "n": n, "c": c }),
            )
            .await;
        assert_eq!(
            user_error_codes(&body["data"]["createProject"]),
            vec!["INVALID_INPUT"]
        );
    }
    let body = app.gql(Some(&ana.token), "mutation($p: ID!) { addComment(projectId: $p, body: \"   \") { userErrors { code } } }", json!({ "p": id })).await;
    assert_eq!(
        user_error_codes(&body["data"]["addComment"]),
        vec!["INVALID_INPUT"]
    );

    let d = app
        .gql(
            Some(&ana.token),
            "mutation($p: ID!) { deleteProject(id: $p) { deletedId userErrors { code } } }",
            json!({ "p": id }),
        )
        .await;
    assert_eq!(d["data"]["deleteProject"]["deletedId"], id);
    let gone = app
        .gql(
            Some(&ana.token),
            "query($p: ID!) { project(id: $p) { id } }",
            json!({ "p": id }),
        )
        .await;
    assert_eq!(error_codes(&gone), vec!["NOT_FOUND"]);
}

/// The list is counted only when the selection reads `totalCount`, however it reads it: the
/// count is right directly, under an alias, through a named or an inline fragment, and a page
/// smaller than the list still counts the whole list.
#[tokio::test]
async fn total_count_is_right_however_the_selection_asks_for_it() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    for name in ["One", "Two", "Three"] {
        create_project(&app, &ana, name).await;
    }
    let q = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) {
               plain: projects(first: 1) { totalCount nodes { name } }
               aliased: projects(first: 1) { n: totalCount }
               named: projects(first: 1) { ...Counted }
               inline: projects(first: 1) { ... on ProjectConnection { totalCount } }
               uncounted: projects(first: 2) { nodes { name } pageInfo { hasNextPage } }
             } }
             fragment Counted on ProjectConnection { totalCount }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let o = &q["data"]["organization"];
    assert_eq!(o["plain"]["totalCount"], 3, "{q}");
    assert_eq!(o["plain"]["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(o["aliased"]["n"], 3, "{q}");
    assert_eq!(o["named"]["totalCount"], 3, "{q}");
    assert_eq!(o["inline"]["totalCount"], 3, "{q}");
    assert_eq!(o["uncounted"]["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(o["uncounted"]["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn projects_are_tenant_scoped() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;
    let id = create_project(&app, &ana, "Secret plan").await;

    let q = app
        .gql(
            Some(&eve.token),
            "query($p: ID!) { project(id: $p) { name content } }",
            json!({ "p": id }),
        )
        .await;
    // Another tenant's project is not found: the lookup names the caller's organizations,
    // so it never even loads the row.
    assert_eq!(error_codes(&q), vec!["NOT_FOUND"]);
    assert!(!q.to_string().contains("Secret plan"));
    for (field, query) in [
        ("updateProject", "mutation($p: ID!) { updateProject(input: {id: $p, name: \"pwned\"}) { project { id } userErrors { code } } }"),
        ("deleteProject", "mutation($p: ID!) { deleteProject(id: $p) { deletedId userErrors { code } } }"),
        ("addComment", "mutation($p: ID!) { addComment(projectId: $p, body: \"hi\") { comment { id } userErrors { code } } }"),
        ("createSharedLink", "mutation($p: ID!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: EDIT}) { sharedLink { url } userErrors { code } } }"),
    ] {
        let body = app.gql(Some(&eve.token), query, json!({ "p": id })).await;
        assert_eq!(user_error_codes(&body["data"][field]), vec!["NOT_FOUND"], "{field}: {body}");
    }
    // Ana's link to it is not found either, for Eve.
    let link = app
        .gql(Some(&ana.token), "mutation($p: ID!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: VIEW}) { sharedLink { id } } }", json!({ "p": id }))
        .await;
    let link = link["data"]["createSharedLink"]["sharedLink"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = app
        .gql(Some(&eve.token), "mutation($l: ID!) { revokeSharedLink(id: $l) { sharedLink { revokedAt } userErrors { code } } }", json!({ "l": link }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["revokeSharedLink"]),
        vec!["NOT_FOUND"],
        "{body}"
    );
    let body = app
        .gql(
            Some(&eve.token),
            CREATE,
            json!({ "o": ana.org_id, "n": "Mine now" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["createProject"]),
        vec!["PERMISSION_DENIED"]
    );
    let q = app
        .gql(
            Some(&ana.token),
            "query($p: ID!) { project(id: $p) { name comments { totalCount } } }",
            json!({ "p": id }),
        )
        .await;
    assert_eq!(q["data"]["project"]["name"], "Secret plan");
    assert_eq!(q["data"]["project"]["comments"]["totalCount"], 0);
}

#[tokio::test]
async fn merging_a_solo_workspace_moves_its_projects_and_keeps_links_working() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let bo_project = create_project(&app, &bo, "Bo's notes").await;
    let link = app
        .gql(Some(&bo.token), "mutation($p: ID!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: VIEW}) { sharedLink { url } } }", json!({ "p": bo_project }))
        .await;
    let token = link["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    let merge = "mutation($s: ID!, $t: ID!) { mergeOrganization(sourceId: $s, targetId: $t) { organization { id projects { nodes { name } } } movedProjects userErrors { code message } } }";
    // Ana's workspace has two members: it cannot be merged away.
    let body = app
        .gql(
            Some(&ana.token),
            merge,
            json!({ "s": ana.org_id, "t": bo.org_id }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["mergeOrganization"]),
        vec!["PERMISSION_DENIED"]
    );

    let body = app
        .gql(
            Some(&bo.token),
            merge,
            json!({ "s": bo.org_id, "t": ana.org_id }),
        )
        .await;
    let m = &body["data"]["mergeOrganization"];
    assert_eq!(m["userErrors"], json!([]), "{body}");
    assert_eq!(m["movedProjects"], 1);
    assert_eq!(m["organization"]["id"], ana.org_id.as_str());
    assert_eq!(
        m["organization"]["projects"]["nodes"][0]["name"],
        "Bo's notes"
    );

    let me = app
        .gql(
            Some(&bo.token),
            "{ me { memberships { organization { id } } activeOrganization { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(
        me["data"]["me"]["activeOrganization"]["id"],
        ana.org_id.as_str()
    );
    let gone = app
        .gql(
            Some(&bo.token),
            "query($o: ID!) { organization(id: $o) { id } }",
            json!({ "o": bo.org_id }),
        )
        .await;
    assert_eq!(error_codes(&gone), vec!["NOT_FOUND"]);

    let view = app
        .gql(
            None,
            "query($t: String!) { sharedLink(token: $t) { project { name } organizationName } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(view["data"]["sharedLink"]["project"]["name"], "Bo's notes");
    assert_eq!(
        view["data"]["sharedLink"]["organizationName"],
        "Ana's workspace"
    );
}
