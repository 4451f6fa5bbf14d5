//! Who may change a plan, and server-to-server API keys: scopes, what a key may read and
//! do, what it never may (act as a user), revocation, last use, the growth authorization
//! rule, and the `kfactor api-keys` commands.
use std::process::Command;

use kfactor::domain::{
    access::{self, Caller},
    api_keys,
    ids::{OrgId, UserId},
    DomainError,
};
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::{
    helpers::{error_codes, spawn, spawn_with, user_error_codes, TestApp, TestUser},
    projects::create_project,
};

const CHANGE_PLAN: &str =
    "mutation($o: ID!, $p: String!) { changePlan(organizationId: $o, plan: $p) {
  organization { id viewerRole plan { key } } previousPlan { key }
  userErrors { code message upgrade { feature message url plan { key } } } } }";

async fn change_plan(app: &TestApp, token: &str, org: &str, plan: &str) -> Value {
    let body = app
        .gql(Some(token), CHANGE_PLAN, json!({ "o": org, "p": plan }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["changePlan"].clone()
}

async fn plan_of(app: &TestApp, u: &TestUser) -> Value {
    app.gql(
        Some(&u.token),
        "query($o: ID!) { organization(id: $o) { plan { key } } }",
        json!({ "o": u.org_id }),
    )
    .await["data"]["organization"]["plan"]["key"]
        .clone()
}

async fn make_staff(app: &TestApp, u: &TestUser) {
    kfactor::domain::identity::set_staff(&app.app.svc, &u.email, true)
        .await
        .unwrap();
}

#[tokio::test]
async fn owners_are_sent_to_checkout_instead_of_changing_plans() {
    let app = spawn_with(|c| {
        c.upgrade_url = Some(
            "https://pay.example.com/checkout?org={organization}&plan={plan}&from={feature}".into(),
        )
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let p = change_plan(&app, &ana.token, &ana.org_id, "business").await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    assert_eq!(p["organization"], Value::Null);
    let up = &p["userErrors"][0]["upgrade"];
    assert_eq!(up["plan"]["key"], "business");
    assert_eq!(
        up["url"],
        format!(
            "https://pay.example.com/checkout?org={}&plan=business&from=",
            ana.org_id
        )
    );
    assert!(
        p["userErrors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("checkout"),
        "{p}"
    );
    assert_eq!(
        plan_of(&app, &ana).await,
        "free",
        "nobody upgrades for free"
    );

    // Limit prompts lead to the same checkout, naming the organization and the feature.
    for i in 0..3 {
        create_project(&app, &ana, &format!("p{i}")).await;
    }
    let refused = app
        .gql(
            Some(&ana.token),
            "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"four\"}) { userErrors { code upgrade { url } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        refused["data"]["createProject"]["userErrors"][0]["upgrade"]["url"],
        format!(
            "https://pay.example.com/checkout?org={}&plan=pro&from=projects",
            ana.org_id
        )
    );

    // Admins and plain members are refused without a checkout prompt (they do not pay);
    // non-members as well.
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "admin").await;
    let p = change_plan(&app, &bo.token, &ana.org_id, "pro").await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    assert_eq!(p["userErrors"][0]["upgrade"], Value::Null);
    let cy = app.sign_up("Cy", "cy@example.com").await;
    let p = change_plan(&app, &cy.token, &ana.org_id, "pro").await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    assert_eq!(plan_of(&app, &ana).await, "free");

    // Staff change any organization's plan; not being a member, they see it from outside.
    make_staff(&app, &cy).await;
    let p = change_plan(&app, &cy.token, &ana.org_id, "pro").await;
    assert_eq!(p["userErrors"], json!([]), "{p}");
    assert_eq!(p["organization"]["plan"]["key"], "pro");
    assert_eq!(p["organization"]["viewerRole"], Value::Null);
    assert_eq!(p["previousPlan"]["key"], "free");
    assert_eq!(plan_of(&app, &ana).await, "pro");
}

#[tokio::test]
async fn api_key_scopes_decide_what_a_key_may_do() {
    let app = spawn_with(|c| {
        c.webhook_allow_http = true;
        c.webhook_allow_private = true;
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    create_project(&app, &ana, "Roadmap").await;
    let billing = app.api_key("billing", &["plans:write"]).await;
    let growth = app.api_key("warehouse", &["growth:read"]).await;
    let hooks = app.api_key("crm", &["webhooks:write"]).await;
    let nothing = app.api_key("idle", &[]).await;
    assert!(billing.starts_with("kfk_") && billing.len() > 40);

    // plans:write changes any organization's plan, and only that key does.
    for key in [&growth, &hooks, &nothing] {
        let p = change_plan(&app, key, &ana.org_id, "pro").await;
        assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"], "{p}");
    }
    let p = change_plan(&app, &billing, &ana.org_id, "pro").await;
    assert_eq!(p["userErrors"], json!([]), "{p}");
    assert_eq!(p["organization"]["plan"]["key"], "pro");
    assert_eq!(p["organization"]["viewerRole"], Value::Null);
    let msg = entity::webhook_messages::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.event_type == "subscription.upgraded")
        .expect("an upgrade webhook");
    let key_id = msg.payload["data"]["changed_by"].as_str().unwrap();
    assert!(key_id.starts_with("key_"), "{key_id}");
    let feed = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity(first: 1) { nodes { type summary actor { displayName } } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let last = &feed["data"]["organization"]["activity"]["nodes"][0];
    assert_eq!(last["type"], "PLAN_CHANGED");
    assert_eq!(
        last["summary"],
        "API key \"billing\" moved Ana's workspace from Free to Pro"
    );

    // A key with a scope sees the organization itself: name, plan, billing, entitlements.
    let outside = "query($o: ID!) { organization(id: $o) { id name viewerRole plan { key }
        billing { plan { key } hasSubscription } entitlement(feature: \"projects\") { used } } }";
    for key in [&billing, &growth, &hooks] {
        let body = app
            .gql(Some(key), outside, json!({ "o": ana.org_id }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let o = &body["data"]["organization"];
        assert_eq!(o["name"], "Ana's workspace");
        assert_eq!(o["viewerRole"], Value::Null);
        assert_eq!(o["billing"]["plan"]["key"], "pro");
        assert_eq!(o["billing"]["hasSubscription"], false);
        assert_eq!(o["entitlement"]["used"], 1);
    }
    // … never what is inside it, whatever its scopes.
    for field in [
        "members { totalCount }",
        "projects { totalCount }",
        "invitations { totalCount }",
        "sharedLinks { totalCount }",
        "activity { totalCount }",
    ] {
        for key in [&billing, &growth, &hooks] {
            let body = app
                .gql(
                    Some(key),
                    &format!("query($o: ID!) {{ organization(id: $o) {{ {field} }} }}"),
                    json!({ "o": ana.org_id }),
                )
                .await;
            assert_eq!(error_codes(&body), vec!["FORBIDDEN"], "{field}: {body}");
        }
    }
    // A key without scopes can do nothing at all.
    let body = app
        .gql(Some(&nothing), outside, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"], "{body}");
    assert_eq!(body["data"]["organization"], Value::Null);

    // A key never acts as a user: no `me`, no user mutations, no projects, no feed.
    for (op, vars) in [
        ("{ me { id } }", json!({})),
        (
            "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"x\"}) { project { id } } }",
            json!({ "o": ana.org_id }),
        ),
        (
            "mutation { createOrganization(name: \"Keys Inc\") { organization { id } } }",
            json!({}),
        ),
        (
            "mutation($o: ID!) { renameOrganization(id: $o, name: \"Mine\") { organization { id } } }",
            json!({ "o": ana.org_id }),
        ),
        ("mutation { logOut }", json!({})),
    ] {
        for key in [&billing, &growth, &hooks] {
            let body = app.gql(Some(key), op, vars.clone()).await;
            assert_eq!(error_codes(&body), vec!["FORBIDDEN"], "{op}: {body}");
        }
    }

    // webhooks:write manages any organization's endpoints (the plan still decides whether
    // it may have them); never platform endpoints.
    let create = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id } secret userErrors { code } } }";
    let input = json!({ "i": { "organizationId": ana.org_id, "url": "http://127.0.0.1:9/crm" } });
    for key in [&billing, &growth] {
        let body = app.gql(Some(key), create, input.clone()).await;
        assert_eq!(
            user_error_codes(&body["data"]["createWebhookEndpoint"]),
            vec!["PERMISSION_DENIED"]
        );
    }
    let body = app.gql(Some(&hooks), create, input).await;
    let endpoint = body["data"]["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let listed = app
        .gql(
            Some(&hooks),
            "query($o: ID!) { organization(id: $o) { webhookEndpoints { id } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"]["webhookEndpoints"],
        json!([{ "id": endpoint }])
    );
    let disable = app
        .gql(
            Some(&hooks),
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, enabled: false) { endpoint { enabled disabledReason } userErrors { code } } }",
            json!({ "id": endpoint }),
        )
        .await;
    assert_eq!(
        disable["data"]["updateWebhookEndpoint"]["endpoint"],
        json!({ "enabled": false, "disabledReason": "Disabled by API key \"crm\"." })
    );
    let body = app
        .gql(
            Some(&growth),
            "query($o: ID!) { organization(id: $o) { webhookEndpoints { id } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"], "{body}");
    let platform = app
        .gql(
            Some(&hooks),
            create,
            json!({ "i": { "url": "http://127.0.0.1:9/all" } }),
        )
        .await;
    assert_eq!(
        user_error_codes(&platform["data"]["createWebhookEndpoint"]),
        vec!["PERMISSION_DENIED"]
    );
    let body = app
        .gql(Some(&hooks), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"]);
    let deleted = app
        .gql(
            Some(&hooks),
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
            json!({ "id": endpoint }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteWebhookEndpoint"]["deletedId"],
        endpoint
    );
}

#[tokio::test]
async fn revoked_and_unknown_keys_are_refused_and_use_is_recorded() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let key = app.api_key("billing", &["plans:write"]).await;
    let svc = &app.app.svc;
    let row = |db: sea_orm::DatabaseConnection| async move {
        api_keys::list(&db).await.unwrap().pop().unwrap()
    };
    assert_eq!(row(svc.db.read.clone()).await.last_used_at, None);
    assert!(
        !row(svc.db.read.clone())
            .await
            .token_hash
            .contains(&key[4..]),
        "only a hash is stored"
    );

    change_plan(&app, &key, &ana.org_id, "pro").await;
    // Written off the request path: poll for it.
    let used_at = app.clock_now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while row(svc.db.read.clone()).await.last_used_at != Some(used_at) {
        assert!(std::time::Instant::now() < deadline, "last use recorded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.clock.advance(chrono::Duration::minutes(5));
    change_plan(&app, &key, &ana.org_id, "business").await;
    let later = app.clock_now();
    while row(svc.db.read.clone()).await.last_used_at != Some(later) {
        assert!(std::time::Instant::now() < deadline, "a later use recorded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Idempotency keys are the key's own: another key's identical request is not a replay.
    let other = app.api_key("billing-2", &["plans:write"]).await;
    let replayed = |token: String| {
        let app = &app;
        let org = ana.org_id.clone();
        async move {
            app.http
                .post(format!("{}/graphql", app.url))
                .bearer_auth(token)
                .header("idempotency-key", "downgrade-1")
                .json(&json!({ "query": CHANGE_PLAN, "variables": { "o": org, "p": "free" } }))
                .send()
                .await
                .unwrap()
                .headers()
                .contains_key("idempotent-replayed")
        }
    };
    assert!(!replayed(key.clone()).await);
    assert!(replayed(key.clone()).await);
    assert!(!replayed(other).await, "scoped to the key");

    // `key` is the oldest; revoked, it stops working at once.
    let first = api_keys::list(&svc.db.read).await.unwrap()[0].id;
    api_keys::revoke(svc, first).await.unwrap();
    for bad in [key.as_str(), "kfk_not-a-key"] {
        let body = app
            .gql(
                Some(bad),
                CHANGE_PLAN,
                json!({ "o": ana.org_id, "p": "pro" }),
            )
            .await;
        assert_eq!(error_codes(&body), vec!["UNAUTHENTICATED"], "{body}");
    }
}

/// The rule the growth resolvers call: staff or `growth:read` for the platform; ADMIN/OWNER,
/// staff or `growth:read` for one organization.
#[tokio::test]
async fn growth_is_authorized_for_admins_staff_and_growth_keys() {
    let app = spawn().await;
    let svc = &app.app.svc;
    let db = &svc.db.read;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let cy = app.sign_up("Cy", "cy@example.com").await;
    let sam = app.sign_up("Sam", "sam@kfactor.dev").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    make_staff(&app, &sam).await;
    let user = |u: &TestUser| {
        let id = UserId::parse(&u.id).unwrap();
        async move {
            entity::users::Entity::find_by_id(id.0)
                .one(db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let (ana_m, bo_m, cy_m, sam_m) = (
        user(&ana).await,
        user(&bo).await,
        user(&cy).await,
        user(&sam).await,
    );
    let growth = api_keys::authenticate(svc, &app.api_key("bi", &["growth:read"]).await)
        .await
        .unwrap();
    let hooks = api_keys::authenticate(svc, &app.api_key("crm", &["webhooks:write"]).await)
        .await
        .unwrap();
    let org = OrgId::parse(&ana.org_id).unwrap();

    let platform = |c: Caller<'_>| access::authorize_platform_growth(c).is_ok();
    assert!(platform(Caller::User(&sam_m)));
    assert!(platform(Caller::Key(&growth)));
    assert!(!platform(Caller::User(&ana_m)));
    assert!(!platform(Caller::Key(&hooks)));

    for (who, c) in [
        ("owner", Caller::User(&ana_m)),
        ("staff", Caller::User(&sam_m)),
        ("growth key", Caller::Key(&growth)),
    ] {
        let o = access::authorize_org_growth(db, c, org).await;
        assert_eq!(o.map(|o| o.id).ok(), Some(org), "{who}");
    }
    for (who, c, want) in [
        ("member", Caller::User(&bo_m), "PermissionDenied"),
        ("outsider", Caller::User(&cy_m), "Forbidden"),
        ("webhooks key", Caller::Key(&hooks), "PermissionDenied"),
    ] {
        let e = access::authorize_org_growth(db, c, org).await.unwrap_err();
        let got = match e {
            DomainError::PermissionDenied(_) => "PermissionDenied",
            DomainError::Forbidden => "Forbidden",
            _ => "other",
        };
        assert_eq!(got, want, "{who}");
    }
}

fn kfactor_cli(db_url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kfactor"))
        .env_remove("KFACTOR_BIND")
        .env("KFACTOR_LOG", "warn")
        .env("KFACTOR_DATABASE_URL", db_url)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keys_commands_create_list_and_revoke() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let run = |args: &[&str]| tokio::task::block_in_place(|| kfactor_cli(&app.db_url, args));

    let (code, key, err) = run(&[
        "api-keys",
        "create",
        "--name",
        "billing",
        "--scope",
        "plans:write",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let key = key.trim().to_string();
    assert!(
        key.starts_with("kfk_") && !key.contains(char::is_whitespace),
        "{key}"
    );
    assert!(
        err.contains("plans:write") && err.contains("not shown again"),
        "{err}"
    );
    let p = change_plan(&app, &key, &ana.org_id, "pro").await;
    assert_eq!(p["userErrors"], json!([]), "{p}");

    let (code, _, err) = run(&["api-keys", "create", "--name", "x", "--scope", "plans:read"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("Unknown scope"), "{err}");

    let (code, list, _) = run(&["api-keys", "list"]);
    assert_eq!(code, Some(0));
    let line = list.lines().find(|l| l.contains("billing")).expect(&list);
    assert!(
        line.contains("plans:write") && !line.contains("REVOKED"),
        "{line}"
    );
    assert!(
        !list.contains(&key[4..]),
        "the key itself is never shown again"
    );
    let id = line.split_whitespace().next().unwrap().to_string();

    let (code, out, err) = run(&["api-keys", "revoke", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("revoked"), "{out}");
    let body = app
        .gql(
            Some(&key),
            CHANGE_PLAN,
            json!({ "o": ana.org_id, "p": "free" }),
        )
        .await;
    assert_eq!(
        error_codes(&body),
        vec!["UNAUTHENTICATED"],
        "revoked at once"
    );
    let (_, list, _) = run(&["api-keys", "list"]);
    assert!(list.contains("REVOKED"), "{list}");
    let (code, _, err) = run(&["api-keys", "revoke", "key_00000000000000000000000000000000"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no API key"), "{err}");
}
