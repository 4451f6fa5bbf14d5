//! Paid upgrades through Stripe: `POST /billing/stripe` verifies `Stripe-Signature` as Stripe
//! specifies (cross-checked with the official `stripe` package), applies each event once and
//! in order, and a paid upgrade lifts a limit at once.
use chrono::Duration;
use kfactor::config::Secret;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use crate::{
    helpers::{
        spawn, spawn_with,
        stripe::{
            checkout, event, header, subscription, verify_with_stripe, Sub, BUSINESS_PRICE,
            PRO_PRICE, SECRET,
        },
        user_error_codes, TestApp, TestUser,
    },
    projects::create_project,
};

/// An app whose catalog maps Stripe prices to Pro and Business, with the endpoint secret set.
async fn billing_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.toml");
    std::fs::write(&path, crate::helpers::stripe::catalog()).unwrap();
    // The catalog is read once, at start.
    spawn_with(|c| {
        c.plans = Some(path.clone());
        c.stripe_webhook_secret = Some(Secret(SECRET.as_bytes().to_vec()));
    })
    .await
}

const BILLING: &str = "query($o: ID!) { organization(id: $o) { plan { key } billing { plan { key } period { start end } hasSubscription
  subscription { provider id customerId status cancelAtPeriodEnd currentPeriodEnd } } } }";

async fn billing(app: &TestApp, u: &TestUser) -> Value {
    let body = app
        .gql(Some(&u.token), BILLING, json!({ "o": u.org_id }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["organization"]["billing"].clone()
}

async fn plan(app: &TestApp, u: &TestUser) -> String {
    billing(app, u).await["plan"]["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The `subscription.upgraded` / `subscription.downgraded` messages written so far.
async fn plan_webhooks(app: &TestApp) -> Vec<Value> {
    entity::webhook_messages::Entity::find()
        .filter(
            entity::webhook_messages::Column::EventType
                .is_in(["subscription.upgraded", "subscription.downgraded"]),
        )
        .order_by_asc(entity::webhook_messages::Column::Id)
        .all(&app.app.svc.db.read)
        .await
        .unwrap()
        .into_iter()
        .map(|m| json!({ "type": m.event_type, "data": m.payload["data"] }))
        .collect()
}

fn pro(org: Option<&str>) -> Sub<'_> {
    Sub {
        id: "sub_1",
        customer: "cus_1",
        status: "active",
        price: PRO_PRICE,
        cancel_at_period_end: false,
        period_end: 1_900_000_000,
        org,
    }
}

#[tokio::test]
async fn stripe_signatures_are_verified_as_stripe_specifies() {
    let app = billing_app().await;
    let now = app.clock_now().timestamp();
    let body = event("evt_sig", "invoice.paid", now, json!({ "id": "in_1" }));
    let good = header(SECRET, now, &body);
    let old_secret = header("whsec_rolled_away_0000000000", now, &body);
    let rolled = format!("{},{}", old_secret, good.split_once(',').unwrap().1);
    let cases: Vec<(&str, String, String, bool)> = vec![
        ("valid", body.clone(), good.clone(), true),
        (
            "two v1 while the secret is rolled",
            body.clone(),
            rolled,
            true,
        ),
        (
            "stale timestamp",
            body.clone(),
            header(SECRET, now - 301, &body),
            false,
        ),
        ("wrong secret", body.clone(), old_secret, false),
        (
            "tampered body",
            body.replace("in_1", "in_2"),
            good.clone(),
            false,
        ),
        ("no v1 signature", body.clone(), format!("t={now}"), false),
    ];
    for (what, payload, sig, valid) in &cases {
        let (status, answer) = app.post_stripe(payload, Some(sig)).await;
        assert_eq!(status, if *valid { 200 } else { 400 }, "{what}: {answer}");
        if *valid {
            assert_eq!(answer["outcome"], "unhandled", "{what}");
        } else {
            assert!(answer["error"].is_string(), "{what}: {answer}");
        }
    }
    let (status, _) = app.post_stripe(&body, None).await;
    assert_eq!(status, 400, "no Stripe-Signature header");

    // The official verifier agrees on every case.
    let pairs: Vec<(String, String)> = cases
        .iter()
        .map(|(_, p, h, _)| (p.clone(), h.clone()))
        .collect();
    if let Some(verdicts) = verify_with_stripe(SECRET, &pairs) {
        for ((what, _, _, valid), verdict) in cases.iter().zip(verdicts) {
            assert_eq!(verdict, *valid, "stripe's verifier on {what}");
        }
    }
}

#[tokio::test]
async fn forged_requests_are_refused_cheaply_without_the_database() {
    let app = billing_app().await;
    let now = app.clock_now().timestamp();
    let body = checkout(
        "evt_x",
        now,
        "org_00000000000000000000000000000000",
        "cus_x",
        "sub_x",
    );
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    let (status, _) = app
        .post_stripe(&huge, Some(&header(SECRET, now, &huge)))
        .await;
    assert_eq!(status, 413, "bodies are bounded before any hashing");

    // With the database gone, a forged request is still answered 400 (it never needed the
    // database); a genuine one gets 500, so Stripe retries it later.
    app.app.svc.db.read.close_by_ref().await.unwrap();
    app.app.svc.db.write.close_by_ref().await.unwrap();
    for sig in [
        header("whsec_guessed_00000000000000", now, &body),
        header(SECRET, now - 3600, &body),
        "t=1,v1=deadbeef".to_string(),
    ] {
        let (status, _) = app.post_stripe(&body, Some(&sig)).await;
        assert_eq!(status, 400, "{sig}");
    }
    let (status, _) = app
        .post_stripe(&body, Some(&header(SECRET, now, &body)))
        .await;
    assert_eq!(status, 500);
}

#[tokio::test]
async fn an_upgrade_through_signed_events_lifts_a_limit_at_once() {
    let app = billing_app().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    for i in 0..3 {
        create_project(&app, &ana, &format!("p{i}")).await;
    }
    let try_fourth = || async {
        app.gql(
            Some(&ana.token),
            "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"four\"}) { project { id } userErrors { code } } }",
            json!({ "o": ana.org_id }),
        )
        .await["data"]["createProject"]
            .clone()
    };
    assert_eq!(user_error_codes(&try_fourth().await), vec!["LIMIT_REACHED"]);
    let b = billing(&app, &ana).await;
    assert_eq!(
        (b["plan"]["key"].clone(), b["hasSubscription"].clone()),
        (json!("free"), json!(false))
    );

    // As in a real checkout, the subscription's own events come before the checkout that
    // names the organization: they are kept, and applied when it arrives.
    let t = app.clock_now().timestamp();
    let incomplete = Sub {
        status: "incomplete",
        ..pro(None)
    };
    assert_eq!(
        app.send_stripe(&subscription("evt_1", "created", t, &incomplete))
            .await,
        "applied"
    );
    assert_eq!(
        app.send_stripe(&subscription("evt_2", "updated", t + 1, &pro(None)))
            .await,
        "applied"
    );
    assert_eq!(plan(&app, &ana).await, "free");
    assert_eq!(
        app.send_stripe(&checkout("evt_3", t + 1, &ana.org_id, "cus_1", "sub_1"))
            .await,
        "applied"
    );
    assert_eq!(plan(&app, &ana).await, "pro");
    assert_eq!(
        try_fourth().await["userErrors"],
        json!([]),
        "the limit is lifted at once"
    );
    let b = billing(&app, &ana).await;
    assert_eq!(b["hasSubscription"], true);
    assert_eq!(
        b["subscription"],
        json!({ "provider": "stripe", "id": "sub_1", "customerId": "cus_1", "status": "ACTIVE",
                "cancelAtPeriodEnd": false, "currentPeriodEnd": "2030-03-17T17:46:40+00:00" })
    );
    assert_eq!(
        plan_webhooks(&app).await,
        vec![json!({ "type": "subscription.upgraded", "data": {
            "organization_id": ana.org_id, "from_plan": "free", "to_plan": "pro",
            "changed_by": "stripe", "stripe_event_id": "evt_3" } })]
    );
    let feed = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity(first: 5) { nodes { type summary } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let changes: Vec<&Value> = feed["data"]["organization"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "PLAN_CHANGED")
        .collect();
    assert_eq!(
        changes,
        vec![
            &json!({ "type": "PLAN_CHANGED", "summary": "Stripe moved Ana's workspace from Free to Pro" })
        ]
    );

    // The other order works too: checkout first, then the subscription (to Business).
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let biz = Sub {
        id: "sub_2",
        customer: "cus_2",
        price: BUSINESS_PRICE,
        ..pro(None)
    };
    assert_eq!(
        app.send_stripe(&checkout("evt_4", t + 2, &bo.org_id, "cus_2", "sub_2"))
            .await,
        "applied"
    );
    assert_eq!(
        plan(&app, &bo).await,
        "free",
        "the plan comes from the subscription"
    );
    assert_eq!(
        app.send_stripe(&subscription("evt_5", "created", t + 2, &biz))
            .await,
        "applied"
    );
    assert_eq!(plan(&app, &bo).await, "business");

    // Billing is for admins and owners (and staff, and API keys), not every member.
    app.add_member(&bo.org_id, &ana.id, "member").await;
    let body = app
        .gql(Some(&ana.token), BILLING, json!({ "o": bo.org_id }))
        .await;
    assert_eq!(
        crate::helpers::error_codes(&body),
        vec!["FORBIDDEN"],
        "{body}"
    );

    // A workspace someone pays for is not merged away under its subscription.
    let merged = app
        .gql(
            Some(&ana.token),
            "mutation($s: ID!, $t: ID!) { mergeOrganization(sourceId: $s, targetId: $t) { movedProjects userErrors { code message } } }",
            json!({ "s": ana.org_id, "t": bo.org_id }),
        )
        .await;
    assert_eq!(
        user_error_codes(&merged["data"]["mergeOrganization"]),
        vec!["PERMISSION_DENIED"],
        "{merged}"
    );
    assert_eq!(plan(&app, &ana).await, "pro");
}

#[tokio::test]
async fn retries_and_replays_apply_once() {
    let app = billing_app().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let t = app.clock_now().timestamp();
    let created = subscription("evt_a", "created", t, &pro(Some(&ana.org_id)));
    assert_eq!(app.send_stripe(&created).await, "applied");
    assert_eq!(plan(&app, &ana).await, "pro");
    // Stripe's retry carries a fresh signature; it changes nothing.
    app.clock.advance(Duration::seconds(30));
    assert_eq!(app.send_stripe(&created).await, "duplicate");

    // A captured delivery replayed as it was (within the tolerance): 200, nothing changes.
    let upgrade = subscription(
        "evt_b",
        "updated",
        t + 10,
        &Sub {
            price: BUSINESS_PRICE,
            ..pro(None)
        },
    );
    let sig = header(SECRET, app.clock_now().timestamp(), &upgrade);
    for want in ["applied", "duplicate", "duplicate"] {
        let (status, answer) = app.post_stripe(&upgrade, Some(&sig)).await;
        assert_eq!((status, answer["outcome"].clone()), (200, json!(want)));
    }
    assert_eq!(plan(&app, &ana).await, "business");

    // Deliveries of one event racing each other: exactly one applies it.
    let down = subscription("evt_c", "updated", t + 20, &pro(None));
    let outcomes = futures_util::future::join_all((0..8).map(|_| app.send_stripe(&down))).await;
    assert_eq!(
        outcomes.iter().filter(|o| *o == "applied").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "duplicate").count(),
        7,
        "{outcomes:?}"
    );
    let types: Vec<Value> = plan_webhooks(&app)
        .await
        .into_iter()
        .map(|w| w["type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("subscription.upgraded"),
            json!("subscription.upgraded"),
            json!("subscription.downgraded")
        ]
    );
}

#[tokio::test]
async fn cancellation_waits_for_deletion_and_older_events_never_win() {
    let app = billing_app().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let t = app.clock_now().timestamp();
    let org = Some(ana.org_id.as_str());
    assert_eq!(
        app.send_stripe(&subscription("evt_1", "created", t, &pro(org)))
            .await,
        "applied"
    );
    for i in 0..4 {
        create_project(&app, &ana, &format!("p{i}")).await;
    }

    // Set to cancel at period end: the plan stays until Stripe deletes the subscription.
    let canceling = Sub {
        cancel_at_period_end: true,
        ..pro(org)
    };
    assert_eq!(
        app.send_stripe(&subscription("evt_2", "updated", t + 10, &canceling))
            .await,
        "applied"
    );
    let b = billing(&app, &ana).await;
    assert_eq!(b["plan"]["key"], "pro");
    assert_eq!(b["subscription"]["cancelAtPeriodEnd"], true);

    // The deletion (t+30) overtakes an earlier update (t+20) on the way.
    let deleted = Sub {
        status: "canceled",
        ..canceling
    };
    assert_eq!(
        app.send_stripe(&subscription("evt_4", "deleted", t + 30, &deleted))
            .await,
        "applied"
    );
    let b = billing(&app, &ana).await;
    assert_eq!(
        (b["plan"]["key"].clone(), b["hasSubscription"].clone()),
        (json!("free"), json!(false))
    );
    let late = Sub {
        cancel_at_period_end: false,
        ..pro(org)
    };
    assert_eq!(
        app.send_stripe(&subscription("evt_3", "updated", t + 20, &late))
            .await,
        "stale"
    );
    // Even an update stamped later cannot revive a deleted subscription.
    assert_eq!(
        app.send_stripe(&subscription("evt_5", "updated", t + 40, &late))
            .await,
        "stale"
    );
    assert_eq!(plan(&app, &ana).await, "free");
    // The downgrade takes nothing away: the projects beyond Free's limit are all still there.
    let e = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { entitlement(feature: \"projects\") { used limit } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        e["data"]["organization"]["entitlement"],
        json!({ "used": 4, "limit": 3 })
    );

    // Between updates too, the newer state wins whatever the arrival order; a `created` of
    // the same second as an update does not undo it.
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let mk = |status, price| Sub {
        id: "sub_b",
        customer: "cus_b",
        status,
        price,
        ..pro(Some(&bo.org_id))
    };
    assert_eq!(
        app.send_stripe(&subscription(
            "evt_b2",
            "updated",
            t + 5,
            &mk("active", BUSINESS_PRICE)
        ))
        .await,
        "applied"
    );
    assert_eq!(
        app.send_stripe(&subscription(
            "evt_b1",
            "updated",
            t + 4,
            &mk("active", PRO_PRICE)
        ))
        .await,
        "stale"
    );
    assert_eq!(
        app.send_stripe(&subscription(
            "evt_b0",
            "created",
            t + 5,
            &mk("incomplete", PRO_PRICE)
        ))
        .await,
        "stale"
    );
    assert_eq!(plan(&app, &bo).await, "business");
    let types: Vec<Value> = plan_webhooks(&app)
        .await
        .into_iter()
        .map(|w| w["type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("subscription.upgraded"),
            json!("subscription.downgraded"),
            json!("subscription.upgraded")
        ]
    );
}

#[tokio::test]
async fn unknown_prices_and_organizations_change_nothing() {
    let app = billing_app().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let t = app.clock_now().timestamp();
    let unknown_price = Sub {
        price: "price_not_in_plans_toml",
        ..pro(Some(&ana.org_id))
    };
    assert_eq!(
        app.send_stripe(&subscription("evt_1", "created", t, &unknown_price))
            .await,
        "ignored"
    );
    for reference in ["org_00000000000000000000000000000000", "not-an-org"] {
        let body = checkout(&format!("evt_{reference}"), t, reference, "cus_1", "sub_1");
        assert_eq!(app.send_stripe(&body).await, "ignored");
    }
    let b = billing(&app, &ana).await;
    assert_eq!(
        (b["plan"]["key"].clone(), b["hasSubscription"].clone()),
        (json!("free"), json!(false))
    );
    assert!(plan_webhooks(&app).await.is_empty());
    let stored = entity::stripe_events::Entity::find_by_id("evt_1".to_string())
        .one(&app.app.svc.db.read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.outcome, entity::stripe_events::EventOutcome::Ignored);
    // Retried, they stay answered 200 and change nothing.
    assert_eq!(
        app.send_stripe(&subscription("evt_1", "created", t, &unknown_price))
            .await,
        "duplicate"
    );
}

#[tokio::test]
async fn without_a_secret_the_stripe_endpoint_is_off() {
    let app = spawn().await;
    let body = event(
        "evt_1",
        "invoice.paid",
        app.clock_now().timestamp(),
        json!({}),
    );
    let (status, answer) = app
        .post_stripe(&body, Some(&header(SECRET, 0, &body)))
        .await;
    assert_eq!(status, 404, "{answer}");
}
