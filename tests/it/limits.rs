//! Abuse limits on the public doors: each limit at its boundary and after its reset, the
//! alias rule, the bounded password hashing, the client address behind proxies, and the
//! limits that must hold across instances on PostgreSQL.
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{json, Value};

use crate::{
    helpers::{error_codes, spawn_on, spawn_with, user_error_codes, TestApp},
    projects::create_project,
    sharing::share,
};
use kfactor::config::Rate;

const LOG_IN: &str = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token userErrors { code } } }";
const SIGN_UP: &str =
    "mutation($i: SignUpInput!) { signUp(input: $i) { token userErrors { code } } }";
const PASSWORD: &str = "correct horse battery";

fn per(count: u32, secs: u64) -> Option<Rate> {
    Some(Rate::new(count, StdDuration::from_secs(secs)))
}

/// A raw POST with extra headers: (status, Retry-After, body).
async fn post(
    app: &TestApp,
    headers: &[(&str, &str)],
    query: &str,
    variables: Value,
) -> (u16, Option<u64>, Value) {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": query, "variables": variables }));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, resp.json().await.unwrap())
}

async fn log_in(app: &TestApp, email: &str, password: &str) -> (u16, Option<u64>, Value) {
    post(app, &[], LOG_IN, json!({ "e": email, "p": password })).await
}

/// Asserts a whole-request refusal: HTTP 429, Retry-After, RATE_LIMITED with the same wait.
fn assert_refused(r: &(u16, Option<u64>, Value), wait: u64) {
    let (status, retry, body) = r;
    assert_eq!(*status, 429, "{body}");
    assert_eq!(error_codes(body), vec!["RATE_LIMITED"], "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["retryAfterSeconds"], wait,
        "{body}"
    );
    assert_eq!(*retry, Some(wait));
}

#[tokio::test]
async fn log_in_failures_are_limited_per_address_and_the_bucket_refills() {
    let app = spawn_with(|c| c.safety.login_failures_per_address = per(3, 900)).await;
    app.sign_up("Ana", "ana@example.com").await;
    // Successes do not count: the right password works as often as it is given.
    for _ in 0..5 {
        let (s, _, b) = log_in(&app, "ana@example.com", PASSWORD).await;
        assert_eq!((s, user_error_codes(&b["data"]["logIn"])), (200, vec![]));
    }
    for _ in 0..3 {
        let (_, _, b) = log_in(&app, "ANA@example.com", "wrong password!").await;
        assert_eq!(
            user_error_codes(&b["data"]["logIn"]),
            vec!["INVALID_CREDENTIALS"]
        );
    }
    // The fourth attempt is refused before the password is looked at, the right one too.
    assert_refused(&log_in(&app, "ana@example.com", PASSWORD).await, 300);
    let (_, _, b) = log_in(&app, "bo@example.com", "wrong password!").await;
    assert_eq!(
        user_error_codes(&b["data"]["logIn"]),
        vec!["INVALID_CREDENTIALS"],
        "other addresses are not affected"
    );
    // One failure's worth refills every 15 min / 3 = 5 min.
    app.clock.advance(Duration::seconds(299));
    assert_refused(&log_in(&app, "ana@example.com", PASSWORD).await, 1);
    app.clock.advance(Duration::seconds(1));
    let (s, _, b) = log_in(&app, "ana@example.com", PASSWORD).await;
    assert_eq!(s, 200);
    assert!(b["data"]["logIn"]["token"].is_string(), "{b}");
}

#[tokio::test]
async fn log_in_failures_are_limited_per_client_and_the_invitation_form_shares_the_budget() {
    let app = spawn_with(|c| {
        c.safety.login_failures_per_address = None;
        c.safety.login_failures_per_ip = per(3, 60);
    })
    .await;
    app.sign_up("Ana", "ana@example.com").await;
    for i in 0..2 {
        let (_, _, b) = log_in(&app, &format!("guess{i}@example.com"), "wrong password!").await;
        assert_eq!(
            user_error_codes(&b["data"]["logIn"]),
            vec!["INVALID_CREDENTIALS"]
        );
    }
    // The invitation page's log-in form is a password door too: same budget.
    let form = app
        .form_post(
            "/invite/anything/accept",
            &[
                ("email", "guess9@example.com"),
                ("password", "wrong password!"),
            ],
            &[],
        )
        .await;
    assert_eq!(form.status().as_u16(), 422);
    let form = app
        .form_post(
            "/invite/anything/accept",
            &[("email", "ana@example.com"), ("password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(form.status().as_u16(), 429);
    assert_eq!(form.headers()["retry-after"], "20");
    assert_refused(&log_in(&app, "ana@example.com", PASSWORD).await, 20);
    app.clock.advance(Duration::seconds(20));
    let (s, _, _) = log_in(&app, "ana@example.com", PASSWORD).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn the_proxy_header_counts_only_when_the_peer_is_a_trusted_proxy() {
    let limits = |c: &mut kfactor::config::Config| {
        c.safety.login_failures_per_address = None;
        c.safety.login_failures_per_ip = per(2, 3600);
    };
    let direct = spawn_with(limits).await;
    // Not a trusted proxy: the header is the client's word, and ignored.
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let r = post(
            &direct,
            &[("x-forwarded-for", ip)],
            LOG_IN,
            json!({ "e": "a@x.io", "p": "wrong password!" }),
        )
        .await;
        assert_eq!(r.0, 200);
    }
    let r = post(
        &direct,
        &[("x-forwarded-for", "203.0.113.3")],
        LOG_IN,
        json!({ "e": "a@x.io", "p": "wrong password!" }),
    )
    .await;
    assert_eq!(r.0, 429, "one client however it labels itself");

    let proxied = spawn_on(&direct.db_url, |c| {
        limits(c);
        c.safety.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let fail = |ip: &'static str| {
        let app = &proxied;
        async move {
            post(
                app,
                &[("x-forwarded-for", ip)],
                LOG_IN,
                json!({ "e": "a@x.io", "p": "wrong password!" }),
            )
            .await
            .0
        }
    };
    assert_eq!(fail("198.51.100.1").await, 200);
    assert_eq!(fail("198.51.100.1").await, 200);
    assert_eq!(fail("198.51.100.1").await, 429);
    assert_eq!(
        fail("198.51.100.2").await,
        200,
        "another client behind the proxy"
    );
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_and_per_address() {
    let app = spawn_with(|c| {
        c.safety.signups_per_ip = per(3, 3600);
        c.safety.signups_per_address = per(2, 3600);
    })
    .await;
    let sign_up = |email: &str| {
        post(
            &app,
            &[],
            SIGN_UP,
            json!({ "i": { "email": email, "password": PASSWORD, "name": "N" } }),
        )
    };
    // Probing one address (EMAIL_TAKEN) is bounded per address.
    let (_, _, b) = sign_up("ana@example.com").await;
    assert_eq!(user_error_codes(&b["data"]["signUp"]), Vec::<String>::new());
    let (_, _, b) = sign_up("ana@example.com").await;
    assert_eq!(user_error_codes(&b["data"]["signUp"]), vec!["EMAIL_TAKEN"]);
    let r = sign_up("ana@example.com").await;
    assert_refused(&r, 1800);
    // The refused attempt did not use the client's third place.
    let (_, _, b) = sign_up("bo@example.com").await;
    assert_eq!(user_error_codes(&b["data"]["signUp"]), Vec::<String>::new());
    let r = sign_up("cy@example.com").await;
    assert_refused(&r, 1200);
    app.clock.advance(Duration::seconds(1200));
    let (_, _, b) = sign_up("cy@example.com").await;
    assert_eq!(user_error_codes(&b["data"]["signUp"]), Vec::<String>::new());
    // A full period after the refusals, the address may try again (it is taken).
    app.clock.advance(Duration::seconds(1200));
    let (_, _, b) = sign_up("ana@example.com").await;
    assert_eq!(user_error_codes(&b["data"]["signUp"]), vec!["EMAIL_TAKEN"]);
    // The default sign-up page is the same door.
    let page = app
        .form_post(
            "/signup",
            &[
                ("name", "Dee"),
                ("email", "dee@example.com"),
                ("password", PASSWORD),
            ],
            &[],
        )
        .await;
    assert_eq!(page.status().as_u16(), 429);
}

#[tokio::test]
async fn guest_comments_are_limited_per_visitor_per_link_and_per_client() {
    let app = spawn_with(|c| {
        c.safety.guest_comments_per_visitor = per(2, 60);
        c.safety.guest_comments_per_link = per(3, 60);
        c.safety.guest_comments_per_ip = per(4, 60);
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, link_a) = share(&app, &ana, &project, "COMMENT", None).await;
    let (_, link_b) = share(&app, &ana, &project, "COMMENT", None).await;
    let comment = |token: &str, visitor: &str| {
        post(
            &app,
            &[],
            "mutation($t: String!, $v: String) { guestComment(input: {token: $t, body: \"hi\", guestName: \"Gus\", visitorId: $v}) { comment { id } userErrors { code } } }",
            json!({ "t": token, "v": visitor }),
        )
    };
    let ok = |r: &(u16, Option<u64>, Value)| {
        assert_eq!(r.0, 200, "{}", r.2);
        assert!(
            r.2["data"]["guestComment"]["comment"]["id"].is_string(),
            "{}",
            r.2
        );
    };
    ok(&comment(&link_a, "v1").await);
    ok(&comment(&link_a, "v1").await);
    assert_refused(&comment(&link_a, "v1").await, 30); // per visitor: 2 a minute
    ok(&comment(&link_a, "v2").await);
    assert_refused(&comment(&link_a, "v3").await, 20); // per link: 3 a minute
    ok(&comment(&link_b, "v4").await);
    assert_refused(&comment(&link_b, "v5").await, 15); // per client: 4 a minute
    app.clock.advance(Duration::seconds(60));
    ok(&comment(&link_a, "v1").await);
}

#[tokio::test]
async fn public_token_lookups_are_limited_per_client_on_every_door() {
    let app = spawn_with(|c| c.safety.public_lookups_per_ip = per(4, 60)).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, token) = share(&app, &ana, &project, "VIEW", None).await;
    let view = "query($t: String!) { sharedLink(token: $t) { permission } }";
    let r = post(&app, &[], view, json!({ "t": token })).await;
    assert_eq!(r.2["data"]["sharedLink"]["permission"], "VIEW");
    let r = post(
        &app,
        &[],
        "query($t: String!) { invitation(token: $t) { email } }",
        json!({ "t": "forged" }),
    )
    .await;
    assert_eq!(error_codes(&r.2), vec!["NOT_FOUND"], "a miss counts too");
    let page = app
        .http
        .get(format!("{}/s/{token}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(format!("{}/r/nosuchcode", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    // The budget is spent: every door refuses, with the wait.
    assert_refused(&post(&app, &[], view, json!({ "t": token })).await, 15);
    for path in [
        format!("/s/{token}"),
        "/invite/forged".into(),
        "/r/nosuchcode".into(),
    ] {
        let r = no_redirect
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 429, "{path}");
        assert_eq!(r.headers()["retry-after"], "15");
    }
    app.clock.advance(Duration::seconds(15));
    let r = post(&app, &[], view, json!({ "t": token })).await;
    assert_eq!(r.2["data"]["sharedLink"]["permission"], "VIEW");
}

#[tokio::test]
async fn one_client_cannot_inflate_unique_visitors_beyond_its_budget() {
    let app = spawn_with(|c| c.safety.visitor_ids_per_ip = per(3, 3600)).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (link_id, token) = share(&app, &ana, &project, "VIEW", None).await;
    let view =
        "query($t: String!, $v: String) { sharedLink(token: $t, visitorId: $v) { permission } }";
    for v in ["a", "b", "c", "d", "e", "a"] {
        let r = post(&app, &[], view, json!({ "t": token, "v": v })).await;
        assert_eq!(r.0, 200, "every open still works: {}", r.2);
    }
    let counts = || async {
        let b = app
            .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { sharedLinks { nodes { id accessCount uniqueVisitors } } } }", json!({ "o": ana.org_id }))
            .await;
        let node = b["data"]["organization"]["sharedLinks"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == link_id.as_str())
            .cloned()
            .unwrap();
        (
            node["accessCount"].as_i64().unwrap(),
            node["uniqueVisitors"].as_i64().unwrap(),
        )
    };
    // a, b, c count; d and e collapse into one visitor for the address.
    assert_eq!(counts().await, (6, 4));
    app.clock.advance(Duration::hours(1));
    post(&app, &[], view, json!({ "t": token, "v": "f" })).await;
    assert_eq!(counts().await, (7, 5), "a new period, a new budget");
}

#[tokio::test]
async fn aliases_cannot_multiply_expensive_fields() {
    let app = spawn_with(|c| c.safety.login_failures_per_address = per(3, 900)).await;
    app.sign_up("Ana", "ana@example.com").await;
    let two = r#"mutation { a: logIn(input: {email: "ana@example.com", password: "wrong password1"}) { token }
                            b: logIn(input: {email: "ana@example.com", password: "wrong password2"}) { token } }"#;
    let (s, _, b) = post(&app, &[], two, json!({})).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(error_codes(&b), vec!["QUERY_TOO_COMPLEX"]);
    assert!(b["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("`logIn` at most 1"));
    // Through fragments too.
    let frag = r#"mutation { ...A ... on Mutation { b: signUp(input: {email: "x@x.io", password: "correct horse battery", name: "X"}) { token } } }
                  fragment A on Mutation { a: signUp(input: {email: "y@x.io", password: "correct horse battery", name: "Y"}) { token } }"#;
    let (s, _, b) = post(&app, &[], frag, json!({})).await;
    assert_eq!(
        (s, error_codes(&b)),
        (400, vec!["QUERY_TOO_COMPLEX".to_string()])
    );
    // Nothing ran: all three failures are still available to the address.
    for _ in 0..3 {
        let (_, _, b) = log_in(&app, "ana@example.com", "wrong password!").await;
        assert_eq!(
            user_error_codes(&b["data"]["logIn"]),
            vec!["INVALID_CREDENTIALS"]
        );
    }
    // The same field twice under one response key is one execution, and allowed.
    let merged = r#"mutation { logIn(input: {email: "bo@x.io", password: "wrong password1"}) { token }
                               logIn(input: {email: "bo@x.io", password: "wrong password1"}) { userErrors { code } } }"#;
    let (s, _, b) = post(&app, &[], merged, json!({})).await;
    assert_eq!(s, 200, "{b}");
    // Cheap fields may repeat.
    let (s, _, _) = post(
        &app,
        &[],
        "{ a: plans { key } b: plans { key } }",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn password_hashing_refuses_instead_of_queueing_without_bound() {
    let app = spawn_with(|c| {
        c.safety.password_hashers = 1;
        c.safety.password_hash_max_wait = StdDuration::ZERO;
    })
    .await;
    let attempts = (0..16).map(|i| {
        let app = &app;
        async move { log_in(app, &format!("u{i}@example.com"), "wrong password!").await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let refused = results.iter().filter(|r| r.0 == 429).count();
    let checked = results
        .iter()
        .filter(|r| {
            r.0 == 200 && user_error_codes(&r.2["data"]["logIn"]) == ["INVALID_CREDENTIALS"]
        })
        .count();
    assert_eq!(refused + checked, 16, "{results:?}");
    assert!(checked >= 1, "the free hasher worked");
    assert!(
        refused >= 1,
        "16 at once cannot all fit one hasher with no wait"
    );
    for r in results.iter().filter(|r| r.0 == 429) {
        assert_refused(r, 1);
    }
}

// SQLite serves one instance; its buckets are in process.
#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn pg_only_log_in_and_sign_up_limits_hold_across_instances() {
    crate::helpers::require_postgres();
    let limits = |c: &mut kfactor::config::Config| {
        c.safety.login_failures_per_address = per(3, 900);
        c.safety.signups_per_ip = per(2, 3600);
    };
    let a = spawn_with(limits).await;
    let b = spawn_on(&a.db_url, limits).await;
    a.sign_up("Ana", "ana@example.com").await;
    log_in(&a, "ana@example.com", "wrong password!").await;
    log_in(&b, "ana@example.com", "wrong password!").await;
    log_in(&a, "ana@example.com", "wrong password!").await;
    // Both instances answer from the one bucket in the database.
    assert_eq!(log_in(&b, "ana@example.com", PASSWORD).await.0, 429);
    assert_eq!(log_in(&a, "ana@example.com", PASSWORD).await.0, 429);
    // One sign-up was used on `a`; one more fits, on either instance, and then none.
    let vars = |email: &str| json!({ "i": { "email": email, "password": PASSWORD, "name": "N" } });
    assert_eq!(post(&b, &[], SIGN_UP, vars("bo@example.com")).await.0, 200);
    assert_eq!(post(&a, &[], SIGN_UP, vars("cy@example.com")).await.0, 429);
    assert_eq!(post(&b, &[], SIGN_UP, vars("cy@example.com")).await.0, 429);
}

#[tokio::test]
async fn the_invitation_budget_spans_organizations_even_when_sent_in_parallel() {
    let app = spawn_with(|c| c.invitation_sends_per_hour = 10).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mut orgs = vec![ana.org_id.clone()];
    for i in 0..4 {
        let b = app
            .gql(
                Some(&ana.token),
                "mutation($n: String!) { createOrganization(name: $n) { organization { id } } }",
                json!({ "n": format!("Org {i}") }),
            )
            .await;
        orgs.push(
            b["data"]["createOrganization"]["organization"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Five calls at once, one per organization, five addresses each: 25 asked, 10 allowed.
    let calls = orgs.iter().enumerate().map(|(i, org)| {
        let (app, token) = (&app, ana.token.clone());
        let emails: Vec<String> = (0..5).map(|j| format!("p{i}-{j}@example.com")).collect();
        async move {
            app.post(
                Some(&token),
                "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { invitations { id } userErrors { code } } }",
                json!({ "o": org, "e": emails }),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut sent = 0;
    for (status, body) in &results {
        match body["data"]["createInvitations"]["invitations"].as_array() {
            Some(list) => {
                assert_eq!(*status, 200);
                sent += list.len();
            }
            None => assert_eq!(error_codes(body), vec!["RATE_LIMITED"], "{body}"),
        }
    }
    assert_eq!(sent, 10, "exactly the budget: {results:?}");
    use sea_orm::EntityTrait;
    let rows = entity::invitation_sends::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(rows.len(), 10);
}
