//! GraphQL over HTTP (status codes, media types, GET rules), limits, GraphiQL, health and
//! metrics.
use serde_json::{json, Value};

use crate::helpers::{error_codes, spawn};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn raw_post(
    app: &crate::helpers::TestApp,
    content_type: &str,
    accept: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.url))
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn responses_follow_graphql_over_http() {
    let app = spawn().await;
    let (s, ct, body) = raw_post(
        &app,
        "application/json",
        None,
        r#"{"query":"{ plans { key } }"}"#,
    )
    .await;
    assert_eq!((s, ct.as_str()), (200, GRAPHQL_RESPONSE));
    assert_eq!(body["data"]["plans"][0]["key"], "free");

    let (s, ct, body) = raw_post(&app, "application/json", None, "{not json").await;
    assert_eq!((s, ct.as_str()), (400, GRAPHQL_RESPONSE));
    assert_eq!(error_codes(&body), vec!["BAD_REQUEST"]);
    assert!(body.get("data").is_none());

    let (s, _, body) = raw_post(
        &app,
        "application/json",
        None,
        r#"{"query":"{ plans { key "}"#,
    )
    .await;
    assert_eq!(s, 400, "unparsable document: {body}");
    assert_eq!(error_codes(&body), vec!["GRAPHQL_PARSE_FAILED"]);

    let (s, _, body) = raw_post(&app, "application/json", None, r#"{"query":"{ nope }"}"#).await;
    assert_eq!(s, 400, "invalid document: {body}");
    assert_eq!(error_codes(&body), vec!["GRAPHQL_VALIDATION_FAILED"]);

    let (s, _, body) = raw_post(
        &app,
        "application/json",
        None,
        r#"[{"query":"{ plans { key } }"}]"#,
    )
    .await;
    assert_eq!(s, 400, "batching is off: {body}");

    let (s, _, _) = raw_post(&app, "application/json", None, r#"{"variables":{}}"#).await;
    assert_eq!(s, 400, "a request without query");

    let (s, _, _) = raw_post(&app, "text/plain", None, r#"{"query":"{ plans { key } }"}"#).await;
    assert_eq!(s, 415);

    // Legacy clients that only accept application/json get 200 and application/json.
    let (s, ct, body) = raw_post(
        &app,
        "application/json",
        Some("application/json"),
        r#"{"query":"{ nope }"}"#,
    )
    .await;
    assert_eq!((s, ct.as_str()), (200, "application/json"));
    assert!(body["errors"].is_array());

    // A field error is still a 200 with data.
    let (s, _, body) = raw_post(
        &app,
        "application/json",
        None,
        r#"{"query":"mutation { createOrganization(name: \"x\") { organization { id } } }"}"#,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(error_codes(&body), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn get_runs_queries_but_never_mutations() {
    let app = spawn().await;
    let resp = app
        .http
        .get(format!("{}/graphql", app.url))
        .query(&[("query", "{ plans { key name } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["plans"].as_array().unwrap().len(), 3);

    let resp = app
        .http
        .get(format!("{}/graphql", app.url))
        .query(&[("query", "mutation { logOut }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn deep_or_expensive_queries_are_refused_but_introspection_works() {
    let app = spawn().await;
    let deep = format!(
        "{{ me {{ {} id {} }} }}",
        "memberships { organization { members { nodes { user { ".repeat(4),
        "} } } } }".repeat(4)
    );
    let (s, body) = app.post(None, &deep, json!({})).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(error_codes(&body), vec!["QUERY_TOO_COMPLEX"]);

    // The introspection query GraphiQL sends on load.
    let (s, body) = app.post(None, INTROSPECTION, json!({})).await;
    assert_eq!(s, 200, "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Organization"));
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary() {
    let app = spawn().await;
    let resp = app
        .http
        .get(format!("{}/graphql", app.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("/graphql/ws"), "subscriptions are wired");
    for src in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        assert!(html.contains(&format!("/graphql/assets/{src}")));
        let asset = app
            .http
            .get(format!("{}/graphql/assets/{src}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status().as_u16(), 200, "{src}");
        assert!(asset.bytes().await.unwrap().len() > 1000);
    }
    assert!(!html.contains("https://"), "nothing is loaded from a CDN");
    let missing = app
        .http
        .get(format!("{}/graphql/assets/nope.js", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn health_metrics_and_request_ids() {
    let app = spawn().await;
    let resp = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    app.gql(None, "{ plans { key } }", json!({})).await;
    let metrics = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("kfactor_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("kfactor_graphql_operations_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fields=\"plans\""),
        "operations are labelled by root field"
    );
}

/// GraphiQL 3's introspection query (graphql-js 16 `getIntrospectionQuery` with
/// descriptions and input value deprecation).
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

#[tokio::test]
async fn browsers_may_read_retry_after_and_the_request_id() {
    let app = spawn().await;
    let resp = app
        .http
        .post(format!("{}/graphql", app.url))
        .header("origin", "https://app.example.com")
        .json(&json!({ "query": "{ plans { key } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let exposed = resp
        .headers()
        .get("access-control-expose-headers")
        .expect("exposed headers")
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    let names: Vec<&str> = exposed.split(',').map(str::trim).collect();
    assert!(
        names.contains(&"retry-after") && names.contains(&"x-request-id"),
        "{exposed}"
    );
}
