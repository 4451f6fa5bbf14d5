//! The guest type boundary: whatever a share-link holder reaches (`sharedLink`,
//! `guestComment`, `guestEdit`, `sharedActivity`) is made of guest types that lead to no
//! user, membership or organization, checked on the live schema by introspection and by
//! what guests actually receive.
use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    time::Duration,
};

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{
        spawn,
        ws::{connect, next_json},
        TestApp,
    },
    projects::create_project,
    sharing::share,
};

/// The doors a link holder uses, as (root type, field).
const GUEST_DOORS: [(&str, &str); 4] = [
    ("Query", "sharedLink"),
    ("Mutation", "guestComment"),
    ("Mutation", "guestEdit"),
    ("Subscription", "sharedActivity"),
];

/// Types that describe people or tenants, or lead to them: never for guests.
const MEMBER_TYPES: [&str; 12] = [
    "User",
    "Membership",
    "Organization",
    "ActivityEvent",
    "Actor",
    "Project",
    "Comment",
    "SharedLink",
    "Invitation",
    "WebhookEndpoint",
    "Usage",
    "Growth",
];

/// Shared value types a guest payload may carry besides the `Guest…` types: none has an id
/// or a way into an organization.
const SHARED_VALUES: [&str; 6] = [
    "SharedView",
    "PageInfo",
    "UserError",
    "UpgradePrompt",
    "Plan",
    "PlanFeature",
];

const INTROSPECT: &str = "{ __schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { name kind possibleTypes { name } interfaces { name }
    fields { name type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

/// The named type under NON_NULL and LIST wrappers.
fn named(t: &Value) -> &str {
    let mut t = t;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    t["name"].as_str().unwrap()
}

/// Every output type reachable from the guest doors, with the fields it has.
async fn guest_reachable(app: &TestApp) -> HashMap<String, Vec<(String, String)>> {
    let body = app.gql(None, INTROSPECT, json!({})).await;
    let schema = &body["data"]["__schema"];
    let types: HashMap<&str, &Value> = schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();
    let fields = |t: &Value| -> Vec<(String, String)> {
        t["fields"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| {
                        (
                            f["name"].as_str().unwrap().to_string(),
                            named(&f["type"]).to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut queue: VecDeque<String> = VecDeque::new();
    for (root, door) in GUEST_DOORS {
        let root = schema[format!("{}Type", root.to_lowercase())]["name"]
            .as_str()
            .unwrap();
        let (_, ty) = fields(types[root])
            .into_iter()
            .find(|(name, _)| name == door)
            .unwrap_or_else(|| panic!("{root}.{door} is in the schema"));
        queue.push_back(ty);
    }
    let mut seen: HashMap<String, Vec<(String, String)>> = HashMap::new();
    while let Some(name) = queue.pop_front() {
        if seen.contains_key(&name) {
            continue;
        }
        let t = types[name.as_str()];
        let fs = fields(t);
        for (_, ty) in &fs {
            queue.push_back(ty.clone());
        }
        for key in ["possibleTypes", "interfaces"] {
            for p in t[key].as_array().into_iter().flatten() {
                queue.push_back(p["name"].as_str().unwrap().to_string());
            }
        }
        seen.insert(name, fs);
    }
    seen
}

#[tokio::test]
async fn nothing_a_guest_reaches_leads_to_a_user_membership_or_organization() {
    let app = spawn().await;
    let reachable = guest_reachable(&app).await;
    let objects: BTreeSet<&str> = reachable
        .iter()
        .filter(|(_, fields)| !fields.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    // The walk does reach the guest types (so the checks below check something).
    for t in [
        "SharedView",
        "GuestProject",
        "GuestComment",
        "GuestActivity",
    ] {
        assert!(objects.contains(t), "{t} not reached: {objects:?}");
    }
    for t in MEMBER_TYPES {
        assert!(!reachable.contains_key(t), "a guest reaches {t}");
    }
    for t in &objects {
        assert!(
            t.starts_with("Guest") || SHARED_VALUES.contains(t),
            "a guest reaches {t}, which is not a guest type"
        );
    }
    // No id of anything but the shared project and its comments and events: an `ID` field
    // only as the object's own `id` of a guest type, and no `…Id` fields at all.
    for (t, fields) in &reachable {
        for (f, ty) in fields {
            assert!(!f.ends_with("Id"), "{t}.{f} is an id of something else");
            if ty == "ID" {
                assert!(
                    f == "id" && t.starts_with("Guest"),
                    "{t}.{f} hands a guest an id"
                );
            }
        }
    }
}

#[tokio::test]
async fn guests_see_names_not_people_in_views_and_payloads() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "pro").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    app.gql(
        Some(&ana.token),
        "mutation($p: ID!) { addComment(projectId: $p, body: \"From Ana\") { comment { id } } }",
        json!({ "p": project }),
    )
    .await;
    let (_, token) = share(&app, &ana, &project, "EDIT", None).await;

    let c = app
        .gql(
            None,
            "mutation($t: String!) { guestComment(input: {token: $t, body: \"From Gus\", guestName: \"Gus\"}) {
              comment { id body authorName createdAt } userErrors { code } } }",
            json!({ "t": token }),
        )
        .await;
    let comment = &c["data"]["guestComment"]["comment"];
    assert_eq!(comment["body"], "From Gus", "{c}");
    assert_eq!(comment["authorName"], "Gus");
    assert!(comment["id"].as_str().unwrap().starts_with("cmt_"));

    let e = app
        .gql(
            None,
            "mutation($t: String!) { guestEdit(input: {token: $t, name: \"Roadmap 2\", content: \"New\"}) {
              project { id name content updatedAt } userErrors { code } } }",
            json!({ "t": token }),
        )
        .await;
    let p = &e["data"]["guestEdit"]["project"];
    assert_eq!(
        (&p["name"], &p["content"]),
        (&json!("Roadmap 2"), &json!("New")),
        "{e}"
    );
    assert_eq!(p["id"], project.as_str());

    let v = app
        .gql(
            None,
            "query($t: String!) { sharedLink(token: $t) { sharedBy project { name comments(first: 1) {
              totalCount pageInfo { hasNextPage endCursor } edges { cursor node { body authorName } } } } } }",
            json!({ "t": token }),
        )
        .await;
    let view = &v["data"]["sharedLink"];
    assert_eq!(view["sharedBy"], "Ana");
    let comments = &view["project"]["comments"];
    assert_eq!(comments["totalCount"], 2, "{v}");
    assert_eq!(comments["pageInfo"]["hasNextPage"], true);
    assert_eq!(comments["edges"][0]["node"]["authorName"], "Ana");
    let after = comments["pageInfo"]["endCursor"].as_str().unwrap();
    let next = app
        .gql(
            None,
            "query($t: String!, $a: String) { sharedLink(token: $t) { project { comments(after: $a) { nodes { authorName } } } } }",
            json!({ "t": token, "a": after }),
        )
        .await;
    assert_eq!(
        next["data"]["sharedLink"]["project"]["comments"]["nodes"],
        json!([{ "authorName": "Gus" }])
    );
    // Nothing of Ana but her name went to the guest.
    for body in [&c, &e, &v, &next] {
        let text = body.to_string();
        assert!(
            !text.contains("ana@example.com")
                && !text.contains(&ana.id)
                && !text.contains(&ana.org_id),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_guest_hears_comments_and_edits_as_guest_activity() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "pro").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, token) = share(&app, &ana, &project, "EDIT", None).await;
    let mut ws = connect(&app, None).await;
    let sub = json!({ "id": "g", "type": "subscribe", "payload": {
        "query": "subscription($t: String!) { sharedActivity(token: $t) { id type summary actorName createdAt } }",
        "variables": { "t": token } } });
    ws.send(Message::text(sub.to_string())).await.unwrap();

    // The subscription starts asynchronously: comment until the guest hears one.
    let comment =
        "mutation($p: ID!) { addComment(projectId: $p, body: \"Live\") { comment { id } } }";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let event = loop {
        let body = app
            .gql(Some(&ana.token), comment, json!({ "p": project }))
            .await;
        assert!(body["data"]["addComment"]["comment"].is_object(), "{body}");
        match tokio::time::timeout(Duration::from_millis(300), next_json(&mut ws)).await {
            Ok(v) => break v,
            Err(_) => assert!(
                std::time::Instant::now() < deadline,
                "no event reached the guest"
            ),
        }
    };
    assert_eq!(event["type"], "next", "{event}");
    let a = &event["payload"]["data"]["sharedActivity"];
    assert_eq!(a["type"], "COMMENT_ADDED", "{event}");
    assert_eq!(a["actorName"], "Ana");
    assert_eq!(a["summary"], "Ana commented on Roadmap");
    assert!(a["id"].as_str().unwrap().starts_with("act_"));
    let keys: BTreeSet<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["id", "type", "summary", "actorName", "createdAt"])
    );

    // A guest's edit comes through as the guest.
    loop {
        let e = app
            .gql(
                None,
                "mutation($t: String!) { guestEdit(input: {token: $t, content: \"By a guest\"}) { userErrors { code } } }",
                json!({ "t": token }),
            )
            .await;
        assert_eq!(e["data"]["guestEdit"]["userErrors"], json!([]), "{e}");
        let next = next_json(&mut ws).await;
        let a = &next["payload"]["data"]["sharedActivity"];
        if a["type"] == "PROJECT_UPDATED" {
            assert_eq!(a["actorName"], "A guest", "{next}");
            break;
        }
        // Further comments of the loop above may still be on their way.
        assert_eq!(a["type"], "COMMENT_ADDED", "{next}");
    }

    // What an ActivityEvent has is not asked for, it is not there to ask for.
    let bad = json!({ "id": "x", "type": "subscribe", "payload": {
        "query": "subscription($t: String!) { sharedActivity(token: $t) { organizationId data actor { user { email } } } }",
        "variables": { "t": token } } });
    ws.send(Message::text(bad.to_string())).await.unwrap();
    let refused = loop {
        let m = next_json(&mut ws).await;
        if m["id"] == "x" {
            break m;
        }
    };
    // Refused in validation (as an `error` message, or a `next` carrying only errors).
    let errors = match refused["type"].as_str() {
        Some("error") => refused["payload"].clone(),
        _ => refused["payload"]["errors"].clone(),
    };
    assert_eq!(refused["payload"]["data"], Value::Null, "{refused}");
    let messages: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    for field in ["organizationId", "data", "actor"] {
        let expected = format!("Unknown field \"{field}\" on type \"GuestActivity\".");
        assert!(messages.contains(&expected.as_str()), "{refused}");
    }
}

#[tokio::test]
async fn guest_edits_are_limited_per_link_and_per_client() {
    use kfactor::config::Rate;
    let per_minute = |n| Some(Rate::new(n, Duration::from_secs(60)));
    let app = crate::helpers::spawn_with(|c| {
        c.safety.guest_edits_per_link = per_minute(2);
        c.safety.guest_edits_per_ip = per_minute(3);
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "pro").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, link_a) = share(&app, &ana, &project, "EDIT", None).await;
    let (_, link_b) = share(&app, &ana, &project, "EDIT", None).await;
    let edit = |token: String, content: &'static str| {
        let app = &app;
        async move {
            app.post(
                None,
                "mutation($t: String!, $c: String) { guestEdit(input: {token: $t, content: $c}) { project { content } } }",
                json!({ "t": token, "c": content }),
            )
            .await
        }
    };
    let content = |r: &(u16, Value)| r.1["data"]["guestEdit"]["project"]["content"].clone();
    assert_eq!(content(&edit(link_a.clone(), "one").await), "one");
    assert_eq!(content(&edit(link_a.clone(), "two").await), "two");
    let (status, body) = edit(link_a.clone(), "three").await; // per link: 2 a minute
    assert_eq!(status, 429, "{body}");
    assert_eq!(crate::helpers::error_codes(&body), ["RATE_LIMITED"]);
    assert_eq!(content(&edit(link_b.clone(), "four").await), "four");
    let (status, _) = edit(link_b.clone(), "five").await; // per client: 3 a minute
    assert_eq!(status, 429);
    // Refused edits changed nothing; the buckets refill.
    let p = app
        .gql(
            Some(&ana.token),
            "query($p: ID!) { project(id: $p) { content } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(p["data"]["project"]["content"], "four");
    app.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(content(&edit(link_a, "six").await), "six");
}
