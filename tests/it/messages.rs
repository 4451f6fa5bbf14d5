//! Messages that say what to do: a refused query names the limit, its cost and the
//! setting; a syntax error is one line with its position; a BOOLEAN feature that is off is
//! NOT_IN_PLAN; the 80 % announcement says the threshold it crossed.
use serde_json::json;

use crate::{
    helpers::{error_codes, spawn, spawn_with},
    projects::create_project,
};

#[tokio::test]
async fn a_too_complex_query_names_its_cost_the_limit_and_the_setting() {
    let app = spawn_with(|c| c.graphql_max_complexity = 1000).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    // Three pages of 100 members, each item costing 5.
    let query = "query($o: ID!) { organization(id: $o) { a: members(first: 100) { nodes { role user { name email } } } b: members(first: 100) { nodes { role user { name email } } } c: members(first: 100) { nodes { role user { name email } } } } }";
    let (status, body) = app
        .post(Some(&ana.token), query, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_codes(&body), vec!["QUERY_TOO_COMPLEX"]);
    let message = body["errors"][0]["message"].as_str().unwrap();
    let cost: usize = message
        .strip_prefix("This query costs ")
        .and_then(|m| m.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(cost >= 1500, "{message}");
    assert!(message.contains("the limit is 1000"), "{message}");
    assert!(
        message.contains("KFACTOR_GRAPHQL_MAX_COMPLEXITY"),
        "{message}"
    );

    // A cheaper page of the same passes.
    let (status, body) = app
        .post(
            Some(&ana.token),
            &query.replace("first: 100", "first: 10"),
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let deep = format!(
        "{{ me {{ {} id {} }} }}",
        "memberships { organization { members { nodes { user { ".repeat(4),
        "} } } } }".repeat(4)
    );
    let (status, body) = app.post(None, &deep, json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(error_codes(&body), vec!["QUERY_TOO_COMPLEX"]);
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("levels deep; the limit is 16"),
        "{message}"
    );
    assert!(message.contains("KFACTOR_GRAPHQL_MAX_DEPTH"), "{message}");
}

#[tokio::test]
async fn a_syntax_error_is_one_line_with_its_position() {
    let app = spawn().await;
    let (status, body) = app
        .post(None, "{ me { id }\n  plans { key ", json!({}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_codes(&body), vec!["GRAPHQL_PARSE_FAILED"]);
    // Nothing ran, so there is no `data` entry at all (GraphQL over HTTP), not `data: null`.
    assert!(body.get("data").is_none(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains('\n') && !message.contains("-->"),
        "{message:?}"
    );
    assert!(
        message.starts_with("Syntax error at line 2, column "),
        "{message}"
    );
    assert!(message.contains("expected"), "{message}");
}

#[tokio::test]
async fn a_boolean_feature_that_is_off_is_not_in_plan_and_80_percent_says_so() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let q = "query($o: ID!) { organization(id: $o) { entitlement(feature: \"edit_links\") { kind enabled status } } }";
    let e = app
        .gql(Some(&ana.token), q, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(
        e["data"]["organization"]["entitlement"],
        json!({ "kind": "BOOLEAN", "enabled": false, "status": "NOT_IN_PLAN" })
    );
    app.enable_feature(&ana.org_id, "edit_links").await;
    let e = app
        .gql(Some(&ana.token), q, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(
        e["data"]["organization"]["entitlement"]["status"], "OK",
        "{e}"
    );

    // Free has 3 projects: the third crosses 80 % (and 100 %).
    for n in 0..3 {
        create_project(&app, &ana, &format!("P{n}")).await;
    }
    let feed = app
        .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { activity(first: 50) { nodes { type summary data } } } }", json!({ "o": ana.org_id }))
        .await;
    let nodes = feed["data"]["organization"]["activity"]["nodes"]
        .as_array()
        .unwrap();
    let eighty = nodes
        .iter()
        .find(|n| n["type"] == "LIMIT_REACHED" && n["data"]["threshold"] == 80)
        .unwrap_or_else(|| panic!("{feed}"));
    let summary = eighty["summary"].as_str().unwrap();
    assert!(
        summary.contains("3 of 3 projects") && summary.contains("80 %"),
        "{summary}"
    );
}
