//! Plans, entitlements and limits: exact boundaries, upgrade prompts, race-free consumption,
//! lazy periods, plan changes, overrides, idempotency.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    helpers::{error_codes, spawn, spawn_with, user_error_codes, TestApp, TestUser},
    projects::{create_project, CREATE},
};

const ENTITLEMENT: &str = "query($o: ID!, $f: String!) { organization(id: $o) { plan { key } billingPeriod { start end }
  entitlement(feature: $f) { feature kind enabled limit used remaining resetsAt status overridden upgrade { feature message url plan { key name } } } } }";

async fn entitlement(app: &TestApp, u: &TestUser, feature: &str) -> Value {
    let body = app
        .gql(
            Some(&u.token),
            ENTITLEMENT,
            json!({ "o": u.org_id, "f": feature }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["organization"]["entitlement"].clone()
}

/// `changePlan` called by `u` itself (what owners and admins may no longer do).
async fn change_plan_as(app: &TestApp, u: &TestUser, plan: &str) -> Value {
    let body = app
        .gql(Some(&u.token), "mutation($o: ID!, $p: String!) { changePlan(organizationId: $o, plan: $p) { organization { plan { key } } previousPlan { key } userErrors { code message } } }", json!({ "o": u.org_id, "p": plan }))
        .await;
    body["data"]["changePlan"].clone()
}

/// The plan change of `u`'s organization, made by the billing system (an API key).
async fn change_plan(app: &TestApp, u: &TestUser, plan: &str) -> Value {
    app.change_plan(&u.org_id, plan).await
}

async fn try_project(app: &TestApp, u: &TestUser, name: &str) -> Value {
    let q = "mutation($o: ID!, $n: String!) { createProject(input: {organizationId: $o, name: $n}) {
      project { id } userErrors { code message upgrade { feature message url plan { key name } } } } }";
    app.gql(Some(&u.token), q, json!({ "o": u.org_id, "n": name }))
        .await["data"]["createProject"]
        .clone()
}

async fn make_staff(app: &TestApp, u: &TestUser) {
    let id = kfactor::domain::ids::UserId::parse(&u.id).unwrap();
    entity::users::Entity::update_many()
        .col_expr(
            entity::users::Column::IsStaff,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(entity::users::Column::Id.eq(id.0))
        .exec(&app.app.svc.db.write)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_project_limit_refuses_exactly_at_the_boundary_with_an_upgrade_prompt() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let e = entitlement(&app, &ana, "projects").await;
    assert_eq!(
        (e["limit"].clone(), e["used"].clone(), e["status"].clone()),
        (json!(3), json!(0), json!("OK"))
    );
    assert_eq!(e["upgrade"], json!(null));
    create_project(&app, &ana, "one").await;
    create_project(&app, &ana, "two").await;
    let e = entitlement(&app, &ana, "projects").await;
    assert_eq!(
        (
            e["used"].clone(),
            e["remaining"].clone(),
            e["status"].clone()
        ),
        (json!(2), json!(1), json!("OK"))
    );
    create_project(&app, &ana, "three").await;
    let e = entitlement(&app, &ana, "projects").await;
    assert_eq!(e["status"], "REACHED");
    assert_eq!(e["upgrade"]["plan"]["key"], "pro");

    let refused = try_project(&app, &ana, "four").await;
    assert_eq!(user_error_codes(&refused), vec!["LIMIT_REACHED"]);
    let err = &refused["userErrors"][0];
    assert_eq!(
        err["message"],
        "You've used 3 of 3 projects on Free — upgrade to Pro for unlimited projects."
    );
    assert_eq!(err["upgrade"]["feature"], "projects");
    assert_eq!(err["upgrade"]["plan"]["name"], "Pro");
    assert_eq!(
        err["upgrade"]["url"],
        format!(
            "{}/upgrade?organization={}&plan=pro&feature=projects",
            app.url, ana.org_id
        )
    );

    // 80 % (3 of 3 crosses both) and 100 % are announced once, not once per refusal.
    try_project(&app, &ana, "five").await;
    let feed = app
        .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { activity(first: 100) { nodes { type data } } } }", json!({ "o": ana.org_id }))
        .await;
    let mut thresholds: Vec<i64> = feed["data"]["organization"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "LIMIT_REACHED")
        .map(|n| n["data"]["threshold"].as_i64().unwrap())
        .collect();
    thresholds.sort();
    assert_eq!(thresholds, vec![80, 100]);
    let hooks = entity::webhook_messages::Entity::find()
        .filter(entity::webhook_messages::Column::EventType.eq("usage.limit_reached"))
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(
        hooks[1].payload["data"]["feature"], "projects",
        "{:?}",
        hooks[1].payload
    );
    assert_eq!(hooks[1].payload["data"]["limit"], 3);
    assert_eq!(hooks[1].payload["data"]["plan"], "free");
}

#[tokio::test]
async fn twenty_concurrent_creates_at_two_of_three_let_exactly_one_through() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    create_project(&app, &ana, "one").await;
    create_project(&app, &ana, "two").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (http, url, token, org) = (
            app.http.clone(),
            app.url.clone(),
            ana.token.clone(),
            ana.org_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body: Value = http
                .post(format!("{url}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": CREATE, "variables": { "o": org, "n": format!("p{i}") } }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"]["createProject"]["userErrors"]
                .as_array()
                .unwrap()
                .is_empty()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += t.await.unwrap() as usize;
    }
    assert_eq!(won, 1);
    assert_eq!(entitlement(&app, &ana, "projects").await["used"], 3);
}

#[tokio::test]
async fn flags_members_links_and_guest_comments() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("plans.toml");
    // A catalog where guest comments are a paid feature: a catalog edit, no code change.
    let text = kfactor::domain::plans::DEFAULT_CATALOG.replacen(
        "guest_comments = true",
        "guest_comments = false",
        1,
    );
    std::fs::write(&catalog, text).unwrap();
    let app = spawn_with(move |c| c.plans = Some(catalog)).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let link = "mutation($p: ID!, $perm: Permission!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: $perm}) { sharedLink { url } userErrors { code message upgrade { plan { key } } } } }";

    let edit = app
        .gql(
            Some(&ana.token),
            link,
            json!({ "p": project, "perm": "EDIT" }),
        )
        .await;
    let p = &edit["data"]["createSharedLink"];
    assert_eq!(user_error_codes(p), vec!["FEATURE_NOT_IN_PLAN"]);
    assert_eq!(p["userErrors"][0]["upgrade"]["plan"]["key"], "pro");
    let e = entitlement(&app, &ana, "edit_links").await;
    assert_eq!(
        (e["kind"].clone(), e["enabled"].clone()),
        (json!("BOOLEAN"), json!(false))
    );
    assert_eq!(e["upgrade"]["plan"]["key"], "pro");

    // Ten active links on Free; revoking one frees a slot.
    let mut first_id = None;
    for i in 0..10 {
        let l = app
            .gql(
                Some(&ana.token),
                link,
                json!({ "p": project, "perm": "COMMENT" }),
            )
            .await;
        assert_eq!(
            l["data"]["createSharedLink"]["userErrors"],
            json!([]),
            "link {i}"
        );
        if i == 0 {
            first_id = Some(l);
        }
    }
    let eleventh = app
        .gql(
            Some(&ana.token),
            link,
            json!({ "p": project, "perm": "VIEW" }),
        )
        .await;
    assert_eq!(
        user_error_codes(&eleventh["data"]["createSharedLink"]),
        vec!["LIMIT_REACHED"]
    );
    let token = first_id.unwrap()["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    // Guest comments are off in this catalog.
    let c = app
        .gql(None, "mutation($t: String!) { guestComment(input: {token: $t, body: \"hi\", guestName: \"Gus\"}) { userErrors { code upgrade { url } } } }", json!({ "t": token }))
        .await;
    assert_eq!(
        user_error_codes(&c["data"]["guestComment"]),
        vec!["FEATURE_NOT_IN_PLAN"]
    );
    // The upgrade prompt (its URL names the organization) is for members, not guests.
    assert_eq!(
        c["data"]["guestComment"]["userErrors"][0]["upgrade"],
        Value::Null,
        "{c}"
    );

    // Members: 5 on Free, pending invitations included.
    let invite = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { invitations { email } userErrors { code field upgrade { plan { key } } } } }";
    let body = app
        .gql(
            Some(&ana.token),
            invite,
            json!({ "o": ana.org_id, "e": ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"] }),
        )
        .await;
    let p = &body["data"]["createInvitations"];
    assert_eq!(
        p["invitations"].as_array().unwrap().len(),
        4,
        "1 member + 4 pending = 5"
    );
    assert_eq!(user_error_codes(p), vec!["LIMIT_REACHED"]);
    assert_eq!(p["userErrors"][0]["field"], json!(["input", "emails", "4"]));
    assert_eq!(p["userErrors"][0]["upgrade"]["plan"]["key"], "pro");
    let e = entitlement(&app, &ana, "members").await;
    assert_eq!(
        (e["used"].clone(), e["status"].clone()),
        (json!(5), json!("REACHED"))
    );

    // The refused address consumed nothing: 4 invitations this month, not 5.
    assert_eq!(
        entitlement(&app, &ana, "invitations_per_month").await["used"],
        4
    );
}

#[tokio::test]
async fn monthly_invitations_roll_over_lazily_from_a_jan_31_anchor() {
    // More than an unverified sender's hourly budget go out within the hour.
    let app = spawn_with(|c| c.safety.unverified_invitation_sends_per_hour = 100).await;
    app.clock.set(
        DateTime::parse_from_rfc3339("2027-01-31T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let e = entitlement(&app, &ana, "invitations_per_month").await;
    assert_eq!(e["kind"], "PERIODIC_LIMIT");
    assert_eq!(e["resetsAt"], "2027-02-28T09:00:00+00:00");

    let invite = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { invitations { id } userErrors { code message } } }";
    // 20 invitations this period (members limit lifted by Pro, which allows 500 a month;
    // revoke each so members do not run out).
    change_plan(&app, &ana, "pro").await;
    let emails: Vec<String> = (0..20).map(|i| format!("p{i}@x.io")).collect();
    let body = app
        .gql(
            Some(&ana.token),
            invite,
            json!({ "o": ana.org_id, "e": emails }),
        )
        .await;
    assert_eq!(
        body["data"]["createInvitations"]["invitations"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    change_plan(&app, &ana, "free").await;
    let e = entitlement(&app, &ana, "invitations_per_month").await;
    assert_eq!(
        (e["used"].clone(), e["limit"].clone(), e["status"].clone()),
        (json!(20), json!(20), json!("REACHED")),
        "a downgrade keeps the period's usage"
    );
    // On Free the 21st invitation of the period is refused, with the plan that lifts it.
    let body = app
        .gql(
            Some(&ana.token),
            invite,
            json!({ "o": ana.org_id, "e": ["late@x.io"] }),
        )
        .await;
    let p = &body["data"]["createInvitations"];
    assert_eq!(user_error_codes(p), vec!["LIMIT_REACHED"], "{body}");
    assert_eq!(
        p["userErrors"][0]["message"],
        "You've used 20 of 20 invitations this month on Free — upgrade to Pro for 500 invitations this month."
    );

    // Feb 28 09:00 starts the next period (Jan 31 clamped): nothing was reset, it is a new row.
    app.clock.set(
        DateTime::parse_from_rfc3339("2027-02-28T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    let e = entitlement(&app, &ana, "invitations_per_month").await;
    assert_eq!(e["used"], 0);
    assert_eq!(e["resetsAt"], "2027-03-31T09:00:00+00:00");
    let body = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { billingPeriod { start end } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        body["data"]["organization"]["billingPeriod"],
        json!({ "start": "2027-02-28T09:00:00+00:00", "end": "2027-03-31T09:00:00+00:00" })
    );
}

#[tokio::test]
async fn upgrades_lift_limits_at_once_and_downgrades_take_nothing_away() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    for i in 0..3 {
        create_project(&app, &ana, &format!("p{i}")).await;
    }
    let up = change_plan(&app, &ana, "pro").await;
    assert_eq!(up["previousPlan"]["key"], "free");
    assert_eq!(up["organization"]["plan"]["key"], "pro");
    let e = entitlement(&app, &ana, "projects").await;
    assert_eq!(
        (e["limit"].clone(), e["used"].clone(), e["status"].clone()),
        (json!(null), json!(3), json!("OK"))
    );
    let extra = create_project(&app, &ana, "p3").await;
    create_project(&app, &ana, "p4").await;
    let link = app
        .gql(Some(&ana.token), "mutation($p: ID!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: EDIT}) { sharedLink { url } userErrors { code } } }", json!({ "p": extra }))
        .await;
    let token = link["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    let down = change_plan(&app, &ana, "free").await;
    assert_eq!(down["userErrors"], json!([]));
    let e = entitlement(&app, &ana, "projects").await;
    assert_eq!(
        (
            e["used"].clone(),
            e["remaining"].clone(),
            e["status"].clone()
        ),
        (json!(5), json!(0), json!("REACHED"))
    );
    assert_eq!(
        user_error_codes(&try_project(&app, &ana, "p5").await),
        vec!["LIMIT_REACHED"]
    );
    // Existing projects stay readable and editable; the EDIT link stays EDIT.
    let upd = app
        .gql(Some(&ana.token), "mutation($p: ID!) { updateProject(input: {id: $p, content: \"still mine\"}) { project { content } userErrors { code } } }", json!({ "p": extra }))
        .await;
    assert_eq!(
        upd["data"]["updateProject"]["project"]["content"],
        "still mine"
    );
    let guest = app
        .gql(None, "mutation($t: String!) { guestEdit(input: {token: $t, content: \"guest edit\"}) { project { content } userErrors { code } } }", json!({ "t": token }))
        .await;
    assert_eq!(
        guest["data"]["guestEdit"]["project"]["content"],
        "guest edit"
    );

    let hooks = entity::webhook_messages::Entity::find()
        .filter(
            entity::webhook_messages::Column::EventType
                .is_in(["subscription.upgraded", "subscription.downgraded"]),
        )
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    let types: Vec<&str> = hooks.iter().map(|h| h.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["subscription.upgraded", "subscription.downgraded"]
    );
    assert_eq!(hooks[0].payload["data"]["from_plan"], "free");
    assert_eq!(hooks[0].payload["data"]["to_plan"], "pro");
    assert!(
        hooks[0].payload["data"]["changed_by"]
            .as_str()
            .unwrap()
            .starts_with("key_"),
        "the billing system's key made the change"
    );

    // Members do not change plans (owners go through checkout); unknown plans are refused.
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "admin").await;
    let as_bo = TestUser {
        org_id: ana.org_id.clone(),
        ..bo
    };
    assert_eq!(
        user_error_codes(&change_plan_as(&app, &as_bo, "business").await),
        vec!["PERMISSION_DENIED"]
    );
    assert_eq!(
        user_error_codes(&change_plan_as(&app, &ana, "platinum").await),
        vec!["INVALID_INPUT"]
    );
}

#[tokio::test]
async fn staff_overrides_are_more_generous_and_expire() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let staff = app.sign_up("Sam", "sam@kfactor.dev").await;
    let set = "mutation($o: ID!, $f: String!, $l: Int, $en: Boolean, $x: DateTime) { setEntitlementOverride(organizationId: $o, feature: $f, limit: $l, enabled: $en, expiresAt: $x) { feature limit enabled overridden } }";
    let denied = app
        .gql(
            Some(&ana.token),
            set,
            json!({ "o": ana.org_id, "f": "projects", "l": 10 }),
        )
        .await;
    assert_eq!(error_codes(&denied), vec!["FORBIDDEN"]);
    make_staff(&app, &staff).await;

    let expires = (app.clock_now() + Duration::days(7)).to_rfc3339();
    let body = app
        .gql(
            Some(&staff.token),
            set,
            json!({ "o": ana.org_id, "f": "projects", "l": 5, "x": expires }),
        )
        .await;
    assert_eq!(
        body["data"]["setEntitlementOverride"],
        json!({ "feature": "projects", "limit": 5, "enabled": true, "overridden": true })
    );
    // A less generous override does not take anything away.
    let body = app
        .gql(
            Some(&staff.token),
            set,
            json!({ "o": ana.org_id, "f": "edit_links", "en": false }),
        )
        .await;
    assert_eq!(body["data"]["setEntitlementOverride"]["enabled"], false);
    let body = app
        .gql(
            Some(&staff.token),
            set,
            json!({ "o": ana.org_id, "f": "webhooks", "en": true }),
        )
        .await;
    assert_eq!(body["data"]["setEntitlementOverride"]["enabled"], true);
    let body = app
        .gql(
            Some(&staff.token),
            set,
            json!({ "o": ana.org_id, "f": "nope", "l": 1 }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["INVALID_INPUT"]);

    for i in 0..5 {
        create_project(&app, &ana, &format!("p{i}")).await;
    }
    assert_eq!(
        user_error_codes(&try_project(&app, &ana, "p5").await),
        vec!["LIMIT_REACHED"]
    );
    app.clock.advance(Duration::days(8));
    let e = entitlement(&app, &ana, "projects").await;
    assert_eq!(
        (
            e["limit"].clone(),
            e["overridden"].clone(),
            e["used"].clone()
        ),
        (json!(3), json!(false), json!(5))
    );
}

/// The staff rule of overrides is the domain's own: called directly, without going through
/// the API, it refuses members (owners included) and API keys, whatever their scopes, and
/// writes nothing for them; staff get the override.
#[tokio::test]
async fn the_domain_refuses_overrides_from_anyone_but_staff() {
    use kfactor::domain::{
        access::{ApiKey, Caller, Scope},
        entitlements::{set_override, OverrideChange},
        ids::{ApiKeyId, OrgId, UserId},
        DomainError,
    };
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let sam = app.sign_up("Sam", "sam@kfactor.dev").await;
    make_staff(&app, &sam).await;
    let svc = &app.app.svc;
    let user = |u: &TestUser| {
        let id = UserId::parse(&u.id).unwrap();
        async move {
            entity::users::Entity::find_by_id(id.0)
                .one(&svc.db.read)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let (owner, staff) = (user(&ana).await, user(&sam).await);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        name: "billing".into(),
        scopes: Scope::ALL.into_iter().collect(),
    };
    let org = OrgId::parse(&ana.org_id).unwrap();
    let change = OverrideChange {
        feature: "projects",
        limit: Some(50),
        unlimited: false,
        enabled: None,
        expires_at: None,
    };
    for caller in [Caller::User(&owner), Caller::Key(&key)] {
        let refused = set_override(svc, caller, org, change).await;
        assert!(
            matches!(&refused, Err(DomainError::PermissionDenied(m)) if m == "Only platform staff can override entitlements."),
            "{caller:?}: {refused:?}"
        );
    }
    let rows = entity::entitlement_overrides::Entity::find()
        .all(&svc.db.read)
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    // Through the API, the same: a key with every scope is refused.
    let token = app
        .api_key("ops", &["plans:write", "growth:read", "webhooks:write"])
        .await;
    let body = app
        .gql(
            Some(&token),
            "mutation($o: ID!) { setEntitlementOverride(organizationId: $o, feature: \"projects\", limit: 50) { limit } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"], "{body}");

    set_override(svc, Caller::User(&staff), org, change)
        .await
        .expect("staff may override");
    assert_eq!(entitlement(&app, &ana, "projects").await["limit"], 50);
}

/// Two staff members (or a retried tool) setting the same override at once: both succeed,
/// one of them wins, and exactly one override row remains.
#[tokio::test]
async fn concurrent_overrides_of_one_feature_all_succeed() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let staff = app.sign_up("Sam", "sam@kfactor.dev").await;
    make_staff(&app, &staff).await;
    let set = "mutation($o: ID!, $f: String!, $l: Int) { setEntitlementOverride(organizationId: $o, feature: $f, limit: $l) { limit overridden } }";
    let calls = (0..8).map(|i| {
        app.gql(
            Some(&staff.token),
            set,
            json!({ "o": ana.org_id, "f": "projects", "l": 10 + i }),
        )
    });
    for body in futures_util::future::join_all(calls).await {
        assert_eq!(
            body["data"]["setEntitlementOverride"]["overridden"], true,
            "{body}"
        );
    }
    let e = entitlement(&app, &ana, "projects").await;
    let limit = e["limit"].as_i64().unwrap();
    assert!((10..18).contains(&limit), "{e}");
    let rows = entity::entitlement_overrides::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn idempotent_retries_return_the_first_result_and_consume_once() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let send = |key: &'static str, name: &'static str| {
        let (http, url, token, org) = (
            app.http.clone(),
            app.url.clone(),
            ana.token.clone(),
            ana.org_id.clone(),
        );
        async move {
            let resp = http
                .post(format!("{url}/graphql"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&json!({ "query": CREATE, "variables": { "o": org, "n": name } }))
                .send()
                .await
                .unwrap();
            let replayed = resp.headers().get("idempotent-replayed").is_some();
            (
                resp.status().as_u16(),
                replayed,
                resp.json::<Value>().await.unwrap(),
            )
        }
    };
    let (s1, r1, first) = send("key-1", "Roadmap").await;
    let (s2, r2, again) = send("key-1", "Roadmap").await;
    assert_eq!((s1, r1, s2, r2), (200, false, 200, true));
    assert_eq!(first, again, "the first result, replayed");
    // Stored encrypted: a response may carry a share or invitation link.
    let stored = entity::idempotency_keys::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let response = stored[0].response.as_deref().unwrap();
    assert!(!response.contains("Roadmap"), "{response}");
    assert_eq!(
        entitlement(&app, &ana, "projects").await["used"],
        1,
        "consumed once"
    );

    let (s3, _, other) = send("key-1", "Something else").await;
    assert_eq!(s3, 422, "{other}");
    assert_eq!(error_codes(&other), vec!["IDEMPOTENCY_KEY_REUSED"]);

    app.clock.advance(Duration::hours(25));
    let (_, replayed, later) = send("key-1", "Roadmap").await;
    assert!(!replayed, "keys are remembered for 24 hours");
    assert_ne!(
        later["data"]["createProject"]["project"]["id"],
        first["data"]["createProject"]["project"]["id"]
    );

    // A response sealed under another server secret cannot be replayed: the key starts
    // afresh instead of failing for 24 hours.
    let (_, _, first) = send("key-2", "Launch").await;
    entity::idempotency_keys::Entity::update_many()
        .col_expr(
            entity::idempotency_keys::Column::Response,
            sea_orm::sea_query::Expr::value("v1.c2VhbGVkIHVuZGVyIGFub3RoZXIgc2VjcmV0IGtleQ"),
        )
        .filter(entity::idempotency_keys::Column::Key.eq("key-2"))
        .exec(&app.app.svc.db.write)
        .await
        .unwrap();
    let (status, replayed, again) = send("key-2", "Launch").await;
    assert_eq!((status, replayed), (200, false), "{again}");
    assert!(first["data"]["createProject"]["project"]["id"].is_string());
    // It ran again: the free plan's third project was "Launch", so this one is refused.
    assert_eq!(
        user_error_codes(&again["data"]["createProject"]),
        vec!["LIMIT_REACHED"],
        "{again}"
    );
}

#[tokio::test]
async fn webhook_endpoints_need_the_webhooks_feature() {
    let app = spawn_with(|c| {
        c.webhook_allow_http = true;
        c.webhook_allow_private = true;
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let create = "mutation($o: ID) { createWebhookEndpoint(input: {organizationId: $o, url: \"http://127.0.0.1:9/hook\"}) {
      endpoint { id } secret userErrors { code message upgrade { plan { key } } } } }";
    let body = app
        .gql(Some(&ana.token), create, json!({ "o": ana.org_id }))
        .await;
    let p = &body["data"]["createWebhookEndpoint"];
    assert_eq!(user_error_codes(p), vec!["FEATURE_NOT_IN_PLAN"], "{body}");
    assert_eq!(p["userErrors"][0]["upgrade"]["plan"]["key"], "pro");
    change_plan(&app, &ana, "pro").await;
    let body = app
        .gql(Some(&ana.token), create, json!({ "o": ana.org_id }))
        .await;
    assert!(body["data"]["createWebhookEndpoint"]["secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    // A downgrade keeps the endpoint (it keeps delivering) but refuses new ones.
    change_plan(&app, &ana, "free").await;
    let list = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { webhookEndpoints { enabled } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        list["data"]["organization"]["webhookEndpoints"],
        json!([{ "enabled": true }])
    );
    let body = app
        .gql(Some(&ana.token), create, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["createWebhookEndpoint"]),
        vec!["FEATURE_NOT_IN_PLAN"]
    );
}
