//! The read path's statement budget (issue 15): what one request costs in SQL, counted by the
//! server itself (`Server-Timing`), on both backends.
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::helpers::{spawn_with, TestApp, TestUser};
use crate::projects::create_project;

/// The dashboard query of the read-path benchmark (`bench/compare`), with page sizes to fill.
fn dashboard(members: u32, projects: u32) -> String {
    format!(
        "query Q1($id: ID!) {{ organization(id: $id) {{ id name plan {{ key }} \
         members(first: {members}) {{ nodes {{ role user {{ id email name }} }} }} \
         projects(first: {projects}) {{ nodes {{ id name }} }} }} }}"
    )
}

/// POSTs a query and returns the body and the statements the server says it ran.
async fn counted(app: &TestApp, token: Option<&str>, query: &str, vars: Value) -> (Value, u32) {
    let resp = app.send(token, query, vars).await;
    let timing = resp
        .headers()
        .get("server-timing")
        .expect("a Server-Timing header")
        .to_str()
        .unwrap()
        .to_string();
    let n = timing
        .split("desc=\"")
        .nth(1)
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no statement count in {timing:?}"));
    (resp.json().await.expect("json"), n)
}

/// An organization with `members` members (the owner included) and `projects` projects.
async fn populated(app: &TestApp, members: usize, projects: usize) -> TestUser {
    let owner = app.sign_up("Olga Owner", "olga@example.com").await;
    // Free allows 3 projects.
    app.change_plan(&owner.org_id, "pro").await;
    for i in 1..members {
        let m = app
            .sign_up(&format!("Member {i}"), &format!("m{i}@example.com"))
            .await;
        app.add_member(&owner.org_id, &m.id, "MEMBER").await;
    }
    for i in 0..projects {
        create_project(app, &owner, &format!("Project {i}")).await;
    }
    owner
}

#[tokio::test]
async fn the_dashboard_query_runs_in_four_statements_whatever_the_page_sizes() {
    let app = spawn_with(|c| c.operations.server_timing = true).await;
    let owner = populated(&app, 7, 12).await;
    let vars = json!({ "id": owner.org_id });
    for (members, projects) in [(5, 10), (1, 1), (2, 12), (100, 100)] {
        let (body, statements) = counted(
            &app,
            Some(&owner.token),
            &dashboard(members, projects),
            vars.clone(),
        )
        .await;
        let org = &body["data"]["organization"];
        assert!(body.get("errors").is_none(), "{body}");
        let got_members = org["members"]["nodes"].as_array().unwrap();
        let got_projects = org["projects"]["nodes"].as_array().unwrap();
        assert_eq!(got_members.len(), (members as usize).min(7), "{body}");
        assert_eq!(got_projects.len(), (projects as usize).min(12), "{body}");
        // The users are really there, each the member's own.
        assert_eq!(
            got_members[0]["user"]["email"], "olga@example.com",
            "{body}"
        );
        assert_eq!(got_members[0]["role"], "OWNER");
        for m in got_members {
            assert!(m["user"]["id"].as_str().unwrap().starts_with("usr_"), "{m}");
        }
        // Newest first.
        assert_eq!(got_projects[0]["name"], "Project 11", "{body}");
        eprintln!("members({members}) projects({projects}): {statements} statements");
        assert!(
            statements <= 4,
            "members({members}) projects({projects}) ran {statements} statements"
        );
    }
}

#[tokio::test]
async fn content_and_totals_are_read_when_asked_for_and_right() {
    let app = spawn_with(|c| c.operations.server_timing = true).await;
    let owner = populated(&app, 2, 3).await;
    let vars = json!({ "id": owner.org_id });
    let (body, without) = counted(
        &app,
        Some(&owner.token),
        "query($id: ID!) { organization(id: $id) { projects(first: 2) { nodes { name } } } }",
        vars.clone(),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    // Content and counts cost nothing extra when not selected, and are right when they are:
    // through edges, a fragment or an alias.
    let (body, with) = counted(
        &app,
        Some(&owner.token),
        "query($id: ID!) { organization(id: $id) {
           a: projects(first: 2) { nodes { ...Body } }
           b: projects(first: 1) { edges { node { text: content } } totalCount }
           members(first: 5) { totalCount edges { node { user { name } } } }
         } }
         fragment Body on Project { name content }",
        vars,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let org = &body["data"]["organization"];
    assert_eq!(org["a"]["nodes"][0]["content"], "Hello", "{body}");
    assert_eq!(org["b"]["edges"][0]["node"]["text"], "Hello", "{body}");
    assert_eq!(org["b"]["totalCount"], 3);
    assert_eq!(org["members"]["totalCount"], 2);
    assert_eq!(
        org["members"]["edges"][0]["node"]["user"]["name"],
        "Olga Owner"
    );
    // Two more lists and two counts: four statements more, not one per item.
    eprintln!("without content and totals {without} statements, with them {with}");
    assert!(with <= without + 4, "{without} then {with}");
}

#[tokio::test]
async fn no_server_timing_unless_configured() {
    let app = spawn_with(|_| {}).await;
    let resp = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": "{ plans { key } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("server-timing").is_none());
}

const OPEN: &str = "query($t: String!) { sharedLink(token: $t) { project { name content } } }";

/// Asks `app` for the link until `done` holds for the answer; returns how long that took.
async fn until_shown(
    app: &TestApp,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        let v = app.gql(None, OPEN, json!({ "t": token })).await;
        if done(&v) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "never shown: {v}"
        );
        tokio::task::yield_now().await;
    }
}

/// Scaled out on PostgreSQL: each instance caches what a link shows, and an edit or a revoke
/// through another instance shows at once (LISTEN/NOTIFY), also after the listener
/// connection was lost.
#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn link_caches_of_other_instances_see_edits_and_revokes_at_once() {
    crate::helpers::require_postgres();
    let a = spawn_with(|_| {}).await;
    let b = crate::helpers::spawn_on(&a.db_url, |c| c.operations.server_timing = true).await;
    let ana = a.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&a, &ana, "Roadmap").await;
    let (link, token) = crate::sharing::share(&a, &ana, &project, "VIEW", None).await;
    // B's listener is connected once it hears A's announcements.
    let shown =
        |c: &'static str| move |v: &Value| v["data"]["sharedLink"]["project"]["content"] == c;
    until_shown(&b, &token, shown("Hello")).await;
    let (first, n1) = counted(&b, None, OPEN, json!({ "t": token })).await;
    let (second, n2) = counted(&b, None, OPEN, json!({ "t": token })).await;
    assert_eq!(first, second);
    assert!(
        n2 < n1 || n1 == 0,
        "the second open is served from B's cache: {n1} then {n2}"
    );

    let edit = "mutation($p: ID!, $c: String) { updateProject(input: {id: $p, content: $c}) { userErrors { code } } }";
    let mut slowest = std::time::Duration::ZERO;
    for round in 0..5 {
        let content: &'static str = ["v0", "v1", "v2", "v3", "v4"][round];
        a.gql(
            Some(&ana.token),
            edit,
            json!({ "p": project, "c": content }),
        )
        .await;
        slowest = slowest.max(until_shown(&b, &token, shown(content)).await);
    }
    eprintln!("an edit through A showed on B within {slowest:?}");
    assert!(
        slowest < std::time::Duration::from_millis(500),
        "{slowest:?}"
    );

    // The listener connections are cut: whatever B missed meanwhile, it never shows an old
    // version (its cache is dropped and unused until it listens again).
    a.app
        .svc
        .db
        .write
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await
        .unwrap();
    a.gql(
        Some(&ana.token),
        edit,
        json!({ "p": project, "c": "after" }),
    )
    .await;
    until_shown(&b, &token, shown("after")).await;

    a.gql(
        Some(&ana.token),
        "mutation($i: ID!) { revokeSharedLink(id: $i) { userErrors { code } } }",
        json!({ "i": link }),
    )
    .await;
    let took = until_shown(&b, &token, |v| {
        crate::helpers::error_codes(v) == vec!["LINK_REVOKED"]
    })
    .await;
    assert!(took < std::time::Duration::from_millis(500), "{took:?}");
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Automatic Persisted Queries as Apollo Client and urql use them: the hash alone first,
/// then hash and text when the server does not know it, the hash alone from then on.
#[tokio::test]
async fn persisted_queries_follow_the_apollo_protocol() {
    let app = spawn_with(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let q = "query($o: ID!) { organization(id: $o) { name } }";
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(q) } });
    let post = |body: Value| {
        app.http
            .post(format!("{}/graphql", app.url))
            .bearer_auth(&ana.token)
            .json(&body)
            .send()
    };
    let vars = json!({ "o": ana.org_id });
    let r = post(json!({ "extensions": ext, "variables": vars }))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    let r = post(json!({ "query": q, "extensions": ext, "variables": vars }))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let full: Value = r.json().await.unwrap();
    assert_eq!(
        full["data"]["organization"]["name"], "Ana's workspace",
        "{full}"
    );
    let r = post(json!({ "extensions": ext, "variables": vars }))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), full);
    // A text that is not the hash's is refused, and registers nothing.
    let wrong =
        json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256("{ me { id } }") } });
    let r = post(json!({ "query": q, "extensions": wrong }))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(json!({ "extensions": wrong })).await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // Over GET too, and a persisted mutation is still refused there.
    let get = |ext: &Value, vars: &Value| {
        app.http
            .get(format!("{}/graphql", app.url))
            .bearer_auth(&ana.token)
            .query(&[
                ("extensions", ext.to_string()),
                ("variables", vars.to_string()),
            ])
            .send()
    };
    let r = get(&ext, &vars).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), full);
    let m = "mutation { logOut }";
    let mext = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(m) } });
    let r = post(json!({ "query": "{ plans { key } }", "extensions": mext }))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the text must match");
    app.http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": m, "extensions": mext }))
        .send()
        .await
        .unwrap();
    let r = get(&mext, &json!({})).await.unwrap();
    assert_eq!(r.status(), 405);
    // Ana is still signed in.
    let r = post(json!({ "extensions": ext, "variables": vars }))
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), full);
}

/// The same document text again is parsed once, yet still validated with each request's
/// variables.
#[tokio::test]
async fn a_repeated_document_is_still_validated_with_its_variables() {
    let app = spawn_with(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let q = "query($o: ID!, $n: Int) { organization(id: $o) { projects(first: $n) { nodes { name } } } }";
    for name in ["One", "Two"] {
        create_project(&app, &ana, name).await;
    }
    for n in [1, 2, 1] {
        let body = app
            .gql(Some(&ana.token), q, json!({ "o": ana.org_id, "n": n }))
            .await;
        let nodes = body["data"]["organization"]["projects"]["nodes"]
            .as_array()
            .unwrap();
        assert_eq!(nodes.len(), n as usize, "{body}");
    }
    let (status, body) = app
        .post(Some(&ana.token), q, json!({ "o": ana.org_id, "n": "two" }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.get("data").is_none(), "{body}");
}
