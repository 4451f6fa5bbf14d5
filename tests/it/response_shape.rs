//! The shape of GraphQL responses, as the spec gives it: a nullable root field that fails
//! is present and `null` (for every root field that can fail), a non-null one nulls its
//! parent, keys follow the selection set, and a document with an invalid argument value
//! anywhere is refused whole (400) before anything runs.
use serde_json::{json, Value};

use crate::{
    helpers::{error_codes, spawn, TestApp},
    projects::create_project,
    sharing::share,
};

/// POSTs and returns (status, the raw body text, the parsed body).
async fn raw(app: &TestApp, token: Option<&str>, query: &str, vars: Value) -> (u16, String, Value) {
    let resp = app.send(token, query, vars).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap();
    (status, text, body)
}

/// The byte offsets of `keys` in `text`, which must be increasing.
fn assert_in_order(text: &str, keys: &[&str]) {
    let at: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing in {text}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "{keys:?} out of order in {text}"
    );
}

/// `data.<field>` is present and null, beside `plans`, with exactly one error at `[field]`
/// carrying `code`.
fn assert_null_field(body: &Value, field: &str, code: &str) {
    let data = body["data"]
        .as_object()
        .unwrap_or_else(|| panic!("data: {body}"));
    assert!(data.contains_key(field), "{field} absent: {body}");
    assert_eq!(data[field], Value::Null, "{body}");
    assert!(
        data["plans"].as_array().is_some_and(|p| !p.is_empty()),
        "{body}"
    );
    assert_eq!(error_codes(body), vec![code], "{body}");
    assert_eq!(body["errors"][0]["path"], json!([field]), "{body}");
}

#[tokio::test]
async fn every_failing_nullable_root_field_is_present_and_null() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bob = app.sign_up("Bob", "bob@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;

    let cases: Vec<(Option<&str>, String, Value, &str, &str)> = vec![
        // A non-member, an unknown id, a bad token.
        (Some(&bob.token), "query($i: ID!) { plans { key } organization(id: $i) { name } }".into(), json!({ "i": ana.org_id }), "organization", "FORBIDDEN"),
        (Some(&bob.token), "query($i: ID!) { plans { key } project(id: $i) { name } }".into(), json!({ "i": project }), "project", "NOT_FOUND"),
        (Some("nope"), "{ plans { key } me { id } }".into(), json!({}), "me", "UNAUTHENTICATED"),
        (None, "{ plans { key } invitation(token: \"nope\") { organizationName } }".into(), json!({}), "invitation", "NOT_FOUND"),
        (None, "{ plans { key } sharedLink(token: \"nope\") { permission } }".into(), json!({}), "sharedLink", "NOT_FOUND"),
        (Some(&bob.token), "{ plans { key } growth(from: \"2026-01-01T00:00:00Z\", to: \"2026-02-01T00:00:00Z\") { signups } }".into(), json!({}), "growth", "FORBIDDEN"),
    ];
    for (token, query, vars, field, code) in cases {
        let (status, text, body) = raw(&app, token, &query, vars).await;
        assert_eq!(status, 200, "{text}");
        assert_null_field(&body, field, code);
        assert_in_order(&text, &["plans", field]);
    }

    // A revoked link: LINK_REVOKED, and the field is null.
    let (id, token) = share(&app, &ana, &project, "VIEW", None).await;
    app.gql(
        Some(&ana.token),
        "mutation($i: ID!) { revokeSharedLink(id: $i) { userErrors { code } } }",
        json!({ "i": id }),
    )
    .await;
    let (_, _, body) = raw(
        &app,
        None,
        "query($t: String!) { plans { key } sharedLink(token: $t) { permission } }",
        json!({ "t": token }),
    )
    .await;
    assert_null_field(&body, "sharedLink", "LINK_REVOKED");
}

#[tokio::test]
async fn a_failing_non_null_field_nulls_its_parent_up_to_data() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bob = app.sign_up("Bob", "bob@example.com").await;
    app.add_member(&ana.org_id, &bob.id, "MEMBER").await;

    // A member may read the workspace but not its webhook endpoints (a non-null list): the
    // organization is null, its error is at the field that failed.
    let (status, _, body) = raw(
        &app,
        Some(&bob.token),
        "query($i: ID!) { plans { key } organization(id: $i) { name webhookEndpoints { id } } }",
        json!({ "i": ana.org_id }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["organization"], Value::Null, "{body}");
    assert!(body["data"]["plans"].is_array(), "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["organization", "webhookEndpoints"]),
        "{body}"
    );

    // The root `webhookEndpoints` is non-null: its failure nulls the whole `data`.
    let (_, _, body) = raw(
        &app,
        None,
        "{ plans { key } webhookEndpoints { id } }",
        json!({}),
    )
    .await;
    // It ran, so `data` is present and null (absent would mean it was refused before running).
    assert_eq!(body.get("data"), Some(&Value::Null), "{body}");
    assert_eq!(error_codes(&body), vec!["UNAUTHENTICATED"], "{body}");
}

#[tokio::test]
async fn response_keys_follow_the_selection_set() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    create_project(&app, &ana, "Roadmap").await;
    for order in [
        ["members", "projects", "invitations"],
        ["projects", "invitations", "members"],
        ["invitations", "members", "projects"],
    ] {
        let query = format!(
            "query($i: ID!) {{ organization(id: $i) {{ {} }} }}",
            order.map(|f| format!("{f} {{ totalCount }}")).join(" ")
        );
        let (_, text, body) = raw(&app, Some(&ana.token), &query, json!({ "i": ana.org_id })).await;
        assert!(body["errors"].is_null(), "{body}");
        assert_in_order(&text, &order);
    }
    // Fragments and aliases keep their place too.
    let (_, text, _) = raw(
        &app,
        Some(&ana.token),
        "query($i: ID!) { z: me { email } organization(id: $i) { ...O name } a: plans { key } } fragment O on Organization { projects { totalCount } id }",
        json!({ "i": ana.org_id }),
    )
    .await;
    assert_in_order(&text, &["z", "organization", "projects", "id", "name", "a"]);
}

const SIGN_UP_DEEP: &str = "mutation($i: SignUpInput!, $n: Int) { signUp(input: $i) { user { memberships { organization { webhookEndpoints { deliveries(first: $n) { totalCount } } } } } } }";

#[tokio::test]
async fn an_invalid_nested_argument_refuses_the_whole_mutation() {
    let app = spawn().await;
    let input =
        json!({ "name": "Ana", "email": "ana@example.com", "password": "correct horse battery" });
    // A literal beyond 32 bits, below a field that would resolve without reading it.
    let literal = SIGN_UP_DEEP
        .replace(", $n: Int", "")
        .replace("first: $n", "first: 6912353030");
    let (status, _, body) = raw(&app, None, &literal, json!({ "i": input })).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.get("data").is_none(),
        "refused before execution: {body}"
    );
    assert_eq!(
        error_codes(&body),
        vec!["GRAPHQL_VALIDATION_FAILED"],
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("first") && message.contains("2147483647"),
        "{message}"
    );

    // The same value as a variable, and a DateTime that is not one.
    let (status, _, body) = raw(
        &app,
        None,
        SIGN_UP_DEEP,
        json!({ "i": input, "n": 6912353030_i64 }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_codes(&body),
        vec!["GRAPHQL_VALIDATION_FAILED"],
        "{body}"
    );
    let bad_date = "mutation($i: SignUpInput!) { signUp(input: $i) { user { memberships { organization { growth(from: \"yesterday\", to: \"2026-01-01T00:00:00Z\") { signups } } } } } }";
    let (status, _, body) = raw(&app, None, bad_date, json!({ "i": input })).await;
    assert_eq!(status, 400, "{body}");
    // An unknown field in an input object given as a variable.
    let extra = json!({ "name": "Ana", "email": "ana@example.com", "password": "correct horse battery", "admin": true });
    let (status, _, body) = raw(
        &app,
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
        json!({ "i": extra }),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Nothing ran: the address is still free.
    let user = app.sign_up("Ana", "ana@example.com").await;
    assert!(!user.token.is_empty());
    // And a valid value still runs.
    let (status, _, body) = raw(&app, Some(&user.token), "query($n: Int) { me { id memberships { organization { projects(first: $n) { totalCount } } } } }", json!({ "n": 5 })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
}
