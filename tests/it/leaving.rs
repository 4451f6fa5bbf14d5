//! Leaving with loose ends: an organization someone pays for cannot be deleted until its
//! subscription is canceled, a purged organization ignores billing events, and a deleted
//! account's address leaves the email outbox.
use kfactor::config::Secret;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    accounts::PASSWORD,
    helpers::{
        spawn_with,
        stripe::{checkout, subscription, Sub, BUSINESS_PRICE, PRO_PRICE, SECRET},
        user_error_codes, TestApp,
    },
};

const DELETE_ORG: &str = "mutation($o: ID!) { deleteOrganization(id: $o) { organization { deletionScheduledFor } userErrors { code message } } }";
const DELETE_ACCOUNT: &str = "mutation($p: String!) { deleteAccount(password: $p) { deletedId userErrors { code message } } }";

async fn paying_app(grace_days: i64) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.toml");
    std::fs::write(&path, crate::helpers::stripe::catalog()).unwrap();
    spawn_with(|c| {
        c.plans = Some(path.clone());
        c.stripe_webhook_secret = Some(Secret(SECRET.as_bytes().to_vec()));
        c.safety.organization_deletion_grace_days = grace_days;
    })
    .await
}

async fn org_row(app: &TestApp, org: &str) -> entity::organizations::Model {
    let id = kfactor::domain::ids::OrgId::parse(org).unwrap();
    entity::organizations::Entity::find_by_id(id.0)
        .one(&app.app.svc.db.read)
        .await
        .unwrap()
        .unwrap()
}

async fn upgrade_webhooks(app: &TestApp) -> usize {
    entity::webhook_messages::Entity::find()
        .filter(entity::webhook_messages::Column::EventType.eq("subscription.upgraded"))
        .all(&app.app.svc.db.read)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_paid_organization_is_deleted_only_after_its_subscription_is_canceled() {
    let app = paying_app(0).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let t = app.clock_now().timestamp();
    let pro = Sub {
        id: "sub_1",
        customer: "cus_1",
        status: "active",
        price: PRO_PRICE,
        cancel_at_period_end: false,
        period_end: t + 30 * 86_400,
        org: Some(&ana.org_id),
    };
    assert_eq!(
        app.send_stripe(&subscription("evt_1", "created", t, &pro))
            .await,
        "applied"
    );
    assert_eq!(org_row(&app, &ana.org_id).await.plan_key, "pro");

    let d = app
        .gql(Some(&ana.token), DELETE_ORG, json!({ "o": ana.org_id }))
        .await;
    let d = &d["data"]["deleteOrganization"];
    assert_eq!(user_error_codes(d), vec!["PERMISSION_DENIED"], "{d}");
    assert!(d["userErrors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cancel it in billing first"));
    // The only member deleting the account would take the organization with it: refused too.
    let a = app
        .gql(Some(&ana.token), DELETE_ACCOUNT, json!({ "p": PASSWORD }))
        .await;
    assert_eq!(
        user_error_codes(&a["data"]["deleteAccount"]),
        vec!["PERMISSION_DENIED"],
        "{a}"
    );
    let row = org_row(&app, &ana.org_id).await;
    assert_eq!((row.deletion_scheduled_for, row.deleted_at), (None, None));
    let me = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], ana.id.as_str());

    // Canceled in Stripe: now the account goes, and its organization with it.
    let canceled = Sub {
        status: "canceled",
        ..pro
    };
    assert_eq!(
        app.send_stripe(&subscription("evt_2", "deleted", t + 10, &canceled))
            .await,
        "applied"
    );
    let a = app
        .gql(Some(&ana.token), DELETE_ACCOUNT, json!({ "p": PASSWORD }))
        .await;
    assert_eq!(
        a["data"]["deleteAccount"]["deletedId"],
        ana.id.as_str(),
        "{a}"
    );
    let row = org_row(&app, &ana.org_id).await;
    assert!(row.deleted_at.is_some());
    let upgrades = upgrade_webhooks(&app).await;

    // Signed events about the purged organization change nothing and are answered 200.
    let business = Sub {
        id: "sub_2",
        price: BUSINESS_PRICE,
        ..pro
    };
    for body in [
        subscription("evt_3", "created", t + 20, &business),
        checkout("evt_4", t + 21, &ana.org_id, "cus_1", "sub_2"),
        subscription("evt_5", "updated", t + 22, &business),
    ] {
        assert_eq!(app.send_stripe(&body).await, "ignored", "{body}");
    }
    let row = org_row(&app, &ana.org_id).await;
    assert_eq!(row.plan_key, "free");
    assert_eq!(upgrade_webhooks(&app).await, upgrades);
}

#[tokio::test]
async fn a_deleted_account_leaves_no_address_in_the_email_outbox() {
    let app = paying_app(0).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let invite = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { invitations { id } userErrors { code } } }";
    app.gql(
        Some(&bo.token),
        invite,
        json!({ "o": bo.org_id, "e": ["ana@example.com", "cy@example.com"] }),
    )
    .await;
    let change = "mutation { changeEmail(newEmail: \"ana@new.example\", password: \"correct horse battery\") { ok } }";
    let c = app.gql(Some(&ana.token), change, json!({})).await;
    assert_eq!(c["data"]["changeEmail"]["ok"], true, "{c}");
    let to = |who: &'static str| {
        let app = &app;
        async move {
            entity::emails::Entity::find()
                .filter(entity::emails::Column::Recipient.eq(who))
                .all(&app.app.svc.db.read)
                .await
                .unwrap()
        }
    };
    let kinds = |rows: Vec<entity::emails::Model>| -> Value {
        let mut k: Vec<String> = rows.into_iter().map(|r| r.kind).collect();
        k.sort();
        json!(k)
    };
    assert_eq!(
        kinds(to("ana@example.com").await),
        json!(["invitation", "verify_email"])
    );
    assert_eq!(kinds(to("ana@new.example").await), json!(["email_change"]));
    let before = entity::emails::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap()
        .len();

    let d = app
        .gql(Some(&ana.token), DELETE_ACCOUNT, json!({ "p": PASSWORD }))
        .await;
    assert_eq!(d["data"]["deleteAccount"]["deletedId"], ana.id.as_str());
    assert!(to("ana@example.com").await.is_empty());
    assert!(to("ana@new.example").await.is_empty());
    // The rows stay (what was sent, so nothing is sent again), addressed to no one.
    let all = entity::emails::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(all.len(), before);
    assert!(all
        .iter()
        .filter(|e| e.recipient.ends_with("@deleted.invalid"))
        .all(|e| e.status.as_str() != "pending"));
    assert_eq!(
        all.iter()
            .filter(|e| e.recipient.ends_with("@deleted.invalid"))
            .count(),
        3
    );

    // A purged organization's invitations leave the outbox as well.
    assert_eq!(kinds(to("cy@example.com").await), json!(["invitation"]));
    let d = app
        .gql(Some(&bo.token), DELETE_ORG, json!({ "o": bo.org_id }))
        .await;
    assert_eq!(
        d["data"]["deleteOrganization"]["userErrors"],
        json!([]),
        "{d}"
    );
    assert!(org_row(&app, &bo.org_id).await.deleted_at.is_some());
    assert!(to("cy@example.com").await.is_empty());
}
