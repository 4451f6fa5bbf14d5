//! Shared links and guests: permissions, expiry, revoke, audience, tenancy, signup via share
//! with guest comments carried over, exact visit counting, the /s/ page.
use chrono::Duration;
use serde_json::{json, Value};

use crate::{
    helpers::{error_codes, spawn_with, user_error_codes, TestApp, TestUser},
    projects::create_project,
};

const CREATE_LINK: &str = "mutation($p: ID!, $perm: Permission!, $a: LinkAudience, $e: DateTime) {
  createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: $perm, audience: $a, expiresAt: $e, surface: \"share-dialog\"}) {
    sharedLink { id url permission audience accessCount uniqueVisitors resourceId createdBy { id } } userErrors { code message field } } }";
const VIEW: &str = "query($t: String!, $v: String) { sharedLink(token: $t, visitorId: $v) {
  permission canComment canEdit organizationName sharedBy signUpUrl project { name content comments { nodes { body authorName } } } } }";
const GUEST_COMMENT: &str = "mutation($t: String!, $b: String!, $n: String!, $v: String) { guestComment(input: {token: $t, body: $b, guestName: $n, visitorId: $v}) {
  comment { id body authorName } userErrors { code message } } }";
const GUEST_EDIT: &str = "mutation($t: String!, $c: String) { guestEdit(input: {token: $t, content: $c}) { project { content } userErrors { code message } } }";

pub async fn share(
    app: &TestApp,
    by: &TestUser,
    project: &str,
    perm: &str,
    audience: Option<&str>,
) -> (String, String) {
    let body = app
        .gql(
            Some(&by.token),
            CREATE_LINK,
            json!({ "p": project, "perm": perm, "a": audience }),
        )
        .await;
    let l = &body["data"]["createSharedLink"]["sharedLink"];
    assert!(l.is_object(), "{body}");
    let url = l["url"].as_str().unwrap();
    (
        l["id"].as_str().unwrap().to_string(),
        url.rsplit('/').next().unwrap().to_string(),
    )
}

/// Ana's workspace on Pro (EDIT links are a Pro feature), with one project.
async fn setup() -> (TestApp, TestUser, String) {
    setup_with(|_| {}).await
}

async fn setup_with(
    tweak: impl FnOnce(&mut kfactor::config::Config),
) -> (TestApp, TestUser, String) {
    let app = spawn_with(tweak).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "pro").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    (app, ana, project)
}

#[tokio::test]
async fn each_permission_allows_exactly_its_actions_for_guests() {
    let (app, ana, project) = setup().await;
    for (perm, can_comment, can_edit) in [
        ("VIEW", false, false),
        ("COMMENT", true, false),
        ("EDIT", true, true),
    ] {
        let (_, token) = share(&app, &ana, &project, perm, None).await;
        let v = app.gql(None, VIEW, json!({ "t": token })).await;
        let view = &v["data"]["sharedLink"];
        assert_eq!(view["permission"], perm);
        assert_eq!(view["canComment"], can_comment);
        assert_eq!(view["canEdit"], can_edit);
        assert_eq!(view["project"]["name"], "Roadmap");
        assert_eq!(view["organizationName"], "Ana's workspace");
        assert_eq!(view["sharedBy"], "Ana");
        assert_eq!(
            view["signUpUrl"],
            format!("{}/signup?share={token}", app.url)
        );

        let c = app
            .gql(
                None,
                GUEST_COMMENT,
                json!({ "t": token, "b": format!("guest on {perm}"), "n": "Gus" }),
            )
            .await;
        let c = &c["data"]["guestComment"];
        if can_comment {
            assert_eq!(c["userErrors"], json!([]), "{perm}");
            assert_eq!(c["comment"]["authorName"], "Gus");
        } else {
            assert_eq!(user_error_codes(c), vec!["PERMISSION_DENIED"], "{perm}");
        }
        let e = app
            .gql(
                None,
                GUEST_EDIT,
                json!({ "t": token, "c": format!("edited via {perm}") }),
            )
            .await;
        let e = &e["data"]["guestEdit"];
        if can_edit {
            assert_eq!(e["project"]["content"], format!("edited via {perm}"));
        } else {
            assert_eq!(user_error_codes(e), vec!["PERMISSION_DENIED"], "{perm}");
        }
    }
    // Guests never reach the organization, its people or the project's links: the guest
    // types have no such fields, so the document is refused before anything runs.
    let (_, token) = share(&app, &ana, &project, "EDIT", None).await;
    for q in [
        "query($t: String!) { sharedLink(token: $t) { project { organization { id members { nodes { user { email } } } } } } }",
        "query($t: String!) { sharedLink(token: $t) { project { sharedLinks { url } } } }",
        "query($t: String!) { sharedLink(token: $t) { project { comments { nodes { author { user { id email } } } } } } }",
        "query($t: String!) { sharedLink(token: $t) { project { createdBy { user { id } } } } }",
    ] {
        let (_, body) = app.post(None, q, json!({ "t": token })).await;
        assert_eq!(body["data"], Value::Null, "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("Unknown field"),
            "{body}"
        );
        assert!(!body.to_string().contains("ana@example.com"));
        assert!(!body.to_string().contains("/s/"));
    }
    // A member uses the normal mutations regardless of links, and sees every comment.
    let p = app.gql(Some(&ana.token), "query($p: ID!) { project(id: $p) { content comments { totalCount } sharedLinks { permission } } }", json!({ "p": project })).await;
    assert_eq!(p["data"]["project"]["content"], "edited via EDIT");
    assert_eq!(p["data"]["project"]["comments"]["totalCount"], 2);
    assert_eq!(
        p["data"]["project"]["sharedLinks"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn expired_and_revoked_links_stop_working() {
    let (app, ana, project) = setup().await;
    let expires = (app.clock_now() + Duration::days(1)).to_rfc3339();
    let body = app
        .gql(
            Some(&ana.token),
            CREATE_LINK,
            json!({ "p": project, "perm": "COMMENT", "e": expires }),
        )
        .await;
    let token = body["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        app.gql(None, VIEW, json!({ "t": token })).await["data"]["sharedLink"]["permission"],
        "COMMENT"
    );
    app.clock.advance(Duration::days(1) + Duration::seconds(1));
    let v = app.gql(None, VIEW, json!({ "t": token })).await;
    assert_eq!(v["data"]["sharedLink"], json!(null));
    assert_eq!(error_codes(&v), vec!["LINK_EXPIRED"]);
    let c = app
        .gql(
            None,
            GUEST_COMMENT,
            json!({ "t": token, "b": "late", "n": "Gus" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&c["data"]["guestComment"]),
        vec!["LINK_EXPIRED"]
    );

    let past = (app.clock_now() - Duration::hours(1)).to_rfc3339();
    let body = app
        .gql(
            Some(&ana.token),
            CREATE_LINK,
            json!({ "p": project, "perm": "VIEW", "e": past }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["createSharedLink"]),
        vec!["INVALID_INPUT"]
    );

    let (id, token) = share(&app, &ana, &project, "EDIT", None).await;
    let r = app.gql(Some(&ana.token), "mutation($i: ID!) { revokeSharedLink(id: $i) { sharedLink { revokedAt } userErrors { code } } }", json!({ "i": id })).await;
    assert!(r["data"]["revokeSharedLink"]["sharedLink"]["revokedAt"].is_string());
    let v = app.gql(None, VIEW, json!({ "t": token })).await;
    assert_eq!(error_codes(&v), vec!["LINK_REVOKED"]);
    let e = app
        .gql(None, GUEST_EDIT, json!({ "t": token, "c": "nope" }))
        .await;
    assert_eq!(
        user_error_codes(&e["data"]["guestEdit"]),
        vec!["LINK_REVOKED"]
    );
    // Another last character (never the same one, or the "forged" token is the real one).
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    assert_eq!(
        error_codes(&app.gql(None, VIEW, json!({ "t": forged })).await),
        vec!["NOT_FOUND"]
    );
}

#[tokio::test]
async fn organization_links_need_a_signed_in_member() {
    let (app, ana, project) = setup().await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let (_, token) = share(&app, &ana, &project, "COMMENT", Some("ORGANIZATION")).await;
    assert_eq!(
        error_codes(&app.gql(None, VIEW, json!({ "t": token })).await),
        vec!["UNAUTHENTICATED"]
    );
    assert_eq!(
        error_codes(&app.gql(Some(&eve.token), VIEW, json!({ "t": token })).await),
        vec!["FORBIDDEN"]
    );
    let v = app.gql(Some(&bo.token), VIEW, json!({ "t": token })).await;
    assert_eq!(v["data"]["sharedLink"]["project"]["name"], "Roadmap");
    let c = app
        .gql(
            Some(&eve.token),
            GUEST_COMMENT,
            json!({ "t": token, "b": "hi", "n": "Eve" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&c["data"]["guestComment"]),
        vec!["PERMISSION_DENIED"]
    );
    let c = app
        .gql(
            Some(&bo.token),
            GUEST_COMMENT,
            json!({ "t": token, "b": "hi", "n": "ignored" }),
        )
        .await;
    assert_eq!(
        c["data"]["guestComment"]["comment"]["authorName"], "Bo",
        "signed-in members comment as themselves"
    );
}

#[tokio::test]
async fn a_token_reaches_only_its_own_project() {
    let (app, ana, project) = setup().await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;
    let other = create_project(&app, &ana, "Other").await;
    let (_, token) = share(&app, &ana, &project, "EDIT", None).await;
    // Eve holds Ana's link: she sees that project only, through the link only.
    let v = app.gql(Some(&eve.token), VIEW, json!({ "t": token })).await;
    assert_eq!(v["data"]["sharedLink"]["project"]["name"], "Roadmap");
    for p in [&project, &other] {
        let q = app
            .gql(
                Some(&eve.token),
                "query($p: ID!) { project(id: $p) { name } }",
                json!({ "p": p }),
            )
            .await;
        // Not found: another tenant's project is not even loaded.
        assert_eq!(error_codes(&q), vec!["NOT_FOUND"]);
        assert!(!q.to_string().contains("Roadmap"), "{q}");
    }
    let links = app
        .gql(
            Some(&eve.token),
            "query($o: ID!) { organization(id: $o) { sharedLinks { nodes { url } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&links), vec!["FORBIDDEN"]);
    let revoke = app
        .gql(Some(&eve.token), "mutation { revokeSharedLink(id: \"lnk_00000000000000000000000000000000\") { userErrors { code } } }", json!({}))
        .await;
    assert_eq!(
        user_error_codes(&revoke["data"]["revokeSharedLink"]),
        vec!["NOT_FOUND"]
    );
}

#[tokio::test]
async fn a_guest_who_signs_up_keeps_their_comments_and_is_attributed_to_the_sharer() {
    let (app, ana, project) = setup().await;
    let (link_id, token) = share(&app, &ana, &project, "COMMENT", None).await;
    app.gql(None, VIEW, json!({ "t": token, "v": "visitor-42" }))
        .await;
    for body in ["First!", "Second"] {
        let c = app
            .gql(
                None,
                GUEST_COMMENT,
                json!({ "t": token, "b": body, "n": "Gus", "v": "visitor-42" }),
            )
            .await;
        assert_eq!(c["data"]["guestComment"]["userErrors"], json!([]));
    }
    app.gql(
        None,
        GUEST_COMMENT,
        json!({ "t": token, "b": "Not Gus", "n": "Other", "v": "visitor-7" }),
    )
    .await;

    let s = app
        .gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id acquisitionSource invitedBy { id } } organization { name } userErrors { code } } }",
            json!({ "i": { "email": "gus@example.com", "password": "correct horse battery", "name": "Gus", "shareToken": token, "visitorId": "visitor-42" } }))
        .await;
    let s = &s["data"]["signUp"];
    assert_eq!(s["userErrors"], json!([]), "{s}");
    assert_eq!(s["user"]["acquisitionSource"], "SHARE");
    assert_eq!(s["user"]["invitedBy"]["id"], ana.id.as_str());
    assert_eq!(s["organization"]["name"], "Gus's workspace");
    let gus = s["user"]["id"].as_str().unwrap();

    // Ana, a member, sees whose the comments are now; a guest sees the names only.
    let p = app
        .gql(
            Some(&ana.token),
            "query($p: ID!) { project(id: $p) { comments { nodes { body author { user { id } } } } } }",
            json!({ "p": project }),
        )
        .await;
    let by: Vec<(Value, Value)> = p["data"]["project"]["comments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["body"].clone(), c["author"]["user"]["id"].clone()))
        .collect();
    assert_eq!(
        by,
        vec![
            (json!("First!"), json!(gus)),
            (json!("Second"), json!(gus)),
            (json!("Not Gus"), json!(null))
        ]
    );
    let v = app.gql(None, VIEW, json!({ "t": token })).await;
    let comments = &v["data"]["sharedLink"]["project"]["comments"]["nodes"];
    assert_eq!(comments[0]["authorName"], "Gus");
    assert_eq!(comments[2]["authorName"], "Other");

    use sea_orm::EntityTrait;
    let hooks = entity::webhook_messages::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    let signup = hooks
        .iter()
        .find(|h| h.event_type == "referral.signup")
        .expect("referral.signup");
    assert_eq!(signup.payload["data"]["source"], "SHARE");
    assert_eq!(signup.payload["data"]["shared_link_id"], link_id.as_str());
    assert_eq!(signup.payload["data"]["resource_id"], project.as_str());
    let events = entity::referral_events::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.action == "shared"));
    assert!(events
        .iter()
        .any(|e| e.action == "signed_up" && e.resulted_in_signup_id.is_some()));

    // The sharer cannot credit themselves.
    let own = app
        .gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { userErrors { code } } }",
            json!({ "i": { "email": "ana+2@example.com", "password": "correct horse battery", "name": "A", "shareToken": token } }))
        .await;
    assert_eq!(
        user_error_codes(&own["data"]["signUp"]),
        vec!["SELF_REFERRAL"]
    );
}

#[tokio::test]
async fn concurrent_visits_are_counted_exactly() {
    // 125 visitor ids from one address: more than one address may introduce by default.
    let (app, ana, project) = setup_with(|c| c.safety.visitor_ids_per_ip = None).await;
    let (_, token) = share(&app, &ana, &project, "VIEW", None).await;
    let mut tasks = Vec::new();
    for i in 0..500 {
        let (http, url, token) = (app.http.clone(), app.url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(format!("{url}/graphql"))
                .json(&json!({ "query": VIEW, "variables": { "t": token, "v": format!("v{}", i % 125) } }))
                .send()
                .await
                .unwrap();
            let body: Value = resp.json().await.unwrap();
            assert!(body["data"]["sharedLink"].is_object(), "{body}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let q = app
        .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { sharedLinks { nodes { accessCount uniqueVisitors firstAccessedAt lastAccessedAt } } activity(first: 100) { nodes { type data } } } }", json!({ "o": ana.org_id }))
        .await;
    let link = &q["data"]["organization"]["sharedLinks"]["nodes"][0];
    assert_eq!(link["accessCount"], 500);
    assert_eq!(link["uniqueVisitors"], 125);
    assert!(link["firstAccessedAt"].is_string() && link["lastAccessedAt"].is_string());
    let new_visitors: i64 = q["data"]["organization"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "SHARED_LINK_VISITED")
        .map(|e| e["data"]["newVisitors"].as_i64().unwrap())
        .sum();
    assert_eq!(
        new_visitors, 125,
        "the feed announces each new visitor once"
    );
}

#[tokio::test]
async fn the_shared_page_renders_the_project_and_its_form() {
    let (app, ana, project) = setup().await;
    let (_, token) = share(&app, &ana, &project, "COMMENT", None).await;
    let resp = app
        .http
        .get(format!("{}/s/{token}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("kf_vid="), "{cookie}");
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("<h1>Roadmap</h1>") && html.contains("Hello"),
        "{html}"
    );
    assert!(
        html.contains(&format!("action=\"{}/s/{token}/comments\"", app.url)),
        "comment form"
    );
    assert!(
        html.contains(&format!("/signup?share={token}")),
        "sign-up call to action"
    );

    let vid = cookie.split(';').next().unwrap().to_string();
    let resp = app
        .form_post(
            &format!("/s/{token}/comments"),
            &[("guest_name", "Gus"), ("body", "From the page <b>")],
            &[&vid],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200, "redirected back to the page");
    let html = resp.text().await.unwrap();
    assert!(html.contains("From the page &lt;b&gt;"), "{html}");

    let (_, view_only) = share(&app, &ana, &project, "VIEW", None).await;
    let html = app
        .http
        .get(format!("{}/s/{view_only}", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("/comments\""), "no form on a VIEW link");
    let q = app.gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { sharedLinks { nodes { permission accessCount } } } }", json!({ "o": ana.org_id })).await;
    let counts: Vec<i64> = q["data"]["organization"]["sharedLinks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["accessCount"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![1, 2], "page opens count as visits");
    assert_eq!(
        app.http
            .get(format!("{}/s/nope", app.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn repeated_opens_always_show_the_current_state() {
    // Opens may be served from an in-process cache (SQLite): every change must show at once.
    let (app, ana, project) = setup().await;
    let (link_id, token) = share(&app, &ana, &project, "EDIT", None).await;
    let view = "query($t: String!) { sharedLink(token: $t) { project { name content } organizationName } }";
    let v = app.gql(None, view, json!({ "t": token })).await;
    assert_eq!(v["data"]["sharedLink"]["project"]["content"], "Hello");
    app.gql(None, GUEST_EDIT, json!({ "t": token, "c": "edited" }))
        .await;
    let v = app.gql(None, view, json!({ "t": token })).await;
    assert_eq!(v["data"]["sharedLink"]["project"]["content"], "edited");
    app.gql(
        Some(&ana.token),
        "mutation($o: ID!) { renameOrganization(id: $o, name: \"Acme\") { userErrors { code } } }",
        json!({ "o": ana.org_id }),
    )
    .await;
    let v = app.gql(None, view, json!({ "t": token })).await;
    assert_eq!(v["data"]["sharedLink"]["organizationName"], "Acme");
    app.gql(
        Some(&ana.token),
        "mutation($i: ID!) { revokeSharedLink(id: $i) { userErrors { code } } }",
        json!({ "i": link_id }),
    )
    .await;
    assert_eq!(
        error_codes(&app.gql(None, view, json!({ "t": token })).await),
        vec!["LINK_REVOKED"]
    );
}

/// Who sees which links, in the organization and on a project: owners and admins every
/// link, a member their own, the platform side (an API key) none of them.
#[tokio::test]
async fn members_see_their_own_links_admins_all_keys_none() {
    let (app, ana, project) = setup().await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let (anas, _) = share(&app, &ana, &project, "VIEW", None).await;
    let (bos, _) = share(&app, &bo, &project, "VIEW", None).await;
    let q = "query($o: ID!, $p: ID!) { organization(id: $o) { sharedLinks { nodes { id } } }
      project(id: $p) { sharedLinks { id } } }";
    let seen = |token: String| {
        let vars = json!({ "o": ana.org_id, "p": project });
        let app = &app;
        async move {
            let body = app.gql(Some(&token), q, vars).await;
            assert!(body.get("errors").is_none(), "{body}");
            let ids = |v: &Value| {
                let mut ids: Vec<String> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["id"].as_str().unwrap().to_string())
                    .collect();
                ids.sort();
                ids
            };
            (
                ids(&body["data"]["organization"]["sharedLinks"]["nodes"]),
                ids(&body["data"]["project"]["sharedLinks"]),
            )
        }
    };
    let mut both = vec![anas.clone(), bos.clone()];
    both.sort();
    assert_eq!(seen(ana.token.clone()).await, (both.clone(), both));
    assert_eq!(seen(bo.token.clone()).await, (vec![bos.clone()], vec![bos]));

    let key = app.api_key("ops", &["growth:read"]).await;
    let body = app
        .gql(
            Some(&key),
            "query($o: ID!) { organization(id: $o) { name sharedLinks { totalCount } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"], "{body}");
}
