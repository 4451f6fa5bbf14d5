//! `Idempotency-Key`: honoured by every mutation that creates something (a retry that
//! differs only in formatting replays the first response and creates nothing twice), and
//! refused with 400 IDEMPOTENCY_NOT_SUPPORTED by every other mutation.
use serde_json::{json, Value};

use crate::{
    helpers::{error_codes, spawn, TestApp},
    projects::create_project,
    sharing::share,
};

/// POSTs with a key; returns (status, replayed?, body).
async fn with_key(
    app: &TestApp,
    token: Option<&str>,
    key: &str,
    query: &str,
    vars: Value,
) -> (u16, bool, Value) {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.url))
        .header("idempotency-key", key)
        .json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    (status, replayed, resp.json().await.unwrap())
}

async fn comment_count(app: &TestApp, token: &str, project: &str) -> i64 {
    let b = app
        .gql(
            Some(token),
            "query($p: ID!) { project(id: $p) { comments { totalCount } } }",
            json!({ "p": project }),
        )
        .await;
    b["data"]["project"]["comments"]["totalCount"]
        .as_i64()
        .unwrap_or_else(|| panic!("{b}"))
}

#[tokio::test]
async fn a_retry_differing_only_in_formatting_replays_and_creates_nothing_twice() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let first = "mutation($p: ID!) { addComment(projectId: $p, body: \"Ship it, now\") { comment { id } userErrors { code } } }";
    let retry = "mutation ($p: ID!) {\n  addComment(projectId: $p,, body: \"Ship it, now\") { # the same\n    comment { id }\n    userErrors { code }\n  }\n}\n";
    let (status, replayed, a) = with_key(
        &app,
        Some(&ana.token),
        "c-1",
        first,
        json!({ "p": project }),
    )
    .await;
    assert_eq!((status, replayed), (200, false), "{a}");
    let (status, replayed, b) = with_key(
        &app,
        Some(&ana.token),
        "c-1",
        retry,
        json!({ "p": project }),
    )
    .await;
    assert_eq!((status, replayed), (200, true), "{b}");
    assert_eq!(a, b);
    assert_eq!(comment_count(&app, &ana.token, &project).await, 1);

    // A different comment under the same key is a different request.
    let (status, _, body) = with_key(
        &app,
        Some(&ana.token),
        "c-1",
        &first.replace("Ship it", "Hold it"),
        json!({ "p": project }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(error_codes(&body), vec!["IDEMPOTENCY_KEY_REUSED"]);

    // Guests too: a retried guest comment is one comment.
    app.enable_feature(&ana.org_id, "guest_comments").await;
    let (_, link) = share(&app, &ana, &project, "COMMENT", None).await;
    let guest = "mutation($t: String!) { guestComment(input: {token: $t, body: \"Nice\", guestName: \"Gia\"}) { comment { id } userErrors { code message } } }";
    let (status, _, a) = with_key(&app, None, "g-1", guest, json!({ "t": link })).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["data"]["guestComment"]["userErrors"], json!([]), "{a}");
    let (_, replayed, b) = with_key(&app, None, "g-1", guest, json!({ "t": link })).await;
    assert!(replayed, "{b}");
    assert_eq!(comment_count(&app, &ana.token, &project).await, 2);

    // And organizations.
    let org = "mutation { createOrganization(name: \"Second\") { organization { id } userErrors { code } } }";
    let (_, _, a) = with_key(&app, Some(&ana.token), "o-1", org, json!({})).await;
    let (_, replayed, b) = with_key(&app, Some(&ana.token), "o-1", org, json!({})).await;
    assert!(replayed && a == b, "{a} {b}");
    let me = app
        .gql(
            Some(&ana.token),
            "{ me { memberships { role } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"]["memberships"].as_array().unwrap().len(),
        2,
        "{me}"
    );
}

#[tokio::test]
async fn a_key_on_a_mutation_that_creates_nothing_is_refused() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let rename = "mutation($o: ID!) { renameOrganization(id: $o, name: \"Renamed\") { organization { name } } }";
    let (status, _, body) = with_key(
        &app,
        Some(&ana.token),
        "r-1",
        rename,
        json!({ "o": ana.org_id }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_codes(&body), vec!["IDEMPOTENCY_NOT_SUPPORTED"]);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("addComment"),
        "{body}"
    );
    // Nothing ran.
    let org = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { name } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        org["data"]["organization"]["name"], "Ana's workspace",
        "{org}"
    );
    // A mix of a supported and an unsupported field is refused whole.
    let mixed = "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"P\"}) { project { id } } renameOrganization(id: $o, name: \"X\") { organization { name } } }";
    let (status, _, _) = with_key(
        &app,
        Some(&ana.token),
        "m-1",
        mixed,
        json!({ "o": ana.org_id }),
    )
    .await;
    assert_eq!(status, 400);
    // A query ignores the key.
    let (status, _, body) =
        with_key(&app, Some(&ana.token), "q-1", "{ me { id } }", json!({})).await;
    assert_eq!(status, 200, "{body}");
}
