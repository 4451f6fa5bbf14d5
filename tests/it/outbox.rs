//! The transactional outbox: rows commit with the change or not at all, and subscribers
//! hear only of committed events.
use kfactor::db::Tx;
use kfactor::{
    domain::{activity::ActivityType, ids::OrgId},
    outbox::{self, Actor, Event, WebhookEvent},
};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::helpers::spawn;

fn event(org: OrgId) -> Event {
    Event {
        org,
        kind: ActivityType::PlanChanged,
        actor: Actor::default(),
        resource: None,
        summary: "Acme moved to Pro".into(),
        data: json!({ "to": "pro" }),
        webhook: Some(WebhookEvent {
            event_type: "subscription.upgraded",
            data: json!({ "organization_id": org.to_string(), "from_plan": "free", "to_plan": "pro" }),
        }),
    }
}

#[tokio::test]
async fn rolled_back_events_leave_no_trace_and_committed_ones_are_announced() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let org = OrgId::parse(&ana.org_id).unwrap();
    let svc = &app.app.svc;
    let mut rx = svc.bus.feed(org);
    let count = || async {
        (
            entity::activity_events::Entity::find()
                .count(&svc.db.read)
                .await
                .unwrap(),
            entity::webhook_messages::Entity::find()
                .count(&svc.db.read)
                .await
                .unwrap(),
        )
    };
    let before = count().await;

    let mut tx = Tx::begin(&svc.db).await.unwrap();
    outbox::record(&mut tx, app.clock_now(), event(org))
        .await
        .unwrap();
    drop(tx); // rolled back
    assert_eq!(count().await, before);
    assert!(
        rx.try_recv().is_err(),
        "nothing announced for a rolled-back change"
    );

    let mut tx = Tx::begin(&svc.db).await.unwrap();
    let row = outbox::record(&mut tx, app.clock_now(), event(org))
        .await
        .unwrap();
    assert!(rx.try_recv().is_err(), "nothing announced before commit");
    tx.commit(&svc.bus).await.unwrap();
    assert_eq!(count().await, (before.0 + 1, before.1 + 1));
    assert_eq!(rx.try_recv().unwrap().id, row.id);

    let msg = entity::webhook_messages::Entity::find()
        .one(&svc.db.read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.event_type, "subscription.upgraded");
    assert_eq!(msg.organization_id, Some(org));
    assert_eq!(msg.payload["type"], "subscription.upgraded");
    assert_eq!(msg.payload["data"]["to_plan"], "pro");
    assert!(msg.payload["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(outbox::message_id(msg.id).starts_with("msg_"));
}
