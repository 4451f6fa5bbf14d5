//! Retention and bounded resources: expired sessions, old idempotency keys and webhook
//! messages are pruned in bounded batches (visits and activity never), the SQLite link cache
//! stays within its byte budget, and `/metrics` can be closed to the public.
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::{
    helpers::{spawn_with, TestApp},
    sharing::share,
};
use kfactor::domain::ids::{SessionId, UserId, WebhookMessageId};
use kfactor::retention::{prune, prune_batch, Pruned};

async fn insert_session(app: &TestApp, user: &str, expires_at: DateTime<Utc>) -> SessionId {
    let id = SessionId::generate();
    entity::sessions::ActiveModel {
        id: Set(id),
        user_id: Set(UserId::parse(user).unwrap()),
        token_hash: Set(format!("{:064x}", id.0.as_u128())),
        created_at: Set(expires_at - Duration::days(30)),
        last_used_at: Set(expires_at - Duration::days(30)),
        expires_at: Set(expires_at),
        user_agent: Set(None),
        ip: Set(None),
        kind: Set(entity::sessions::SessionKind::Api),
    }
    .insert(&app.app.svc.db.write)
    .await
    .unwrap();
    id
}

async fn insert_key(app: &TestApp, key: &str, created_at: DateTime<Utc>, finished: bool) {
    entity::idempotency_keys::ActiveModel {
        scope: Set("anonymous".into()),
        key: Set(key.into()),
        request_hash: Set("h".into()),
        response: Set(finished.then(|| "sealed".to_string())),
        created_at: Set(created_at),
    }
    .insert(&app.app.svc.db.write)
    .await
    .unwrap();
}

async fn insert_message(
    app: &TestApp,
    created_at: DateTime<Utc>,
    dispatched: bool,
) -> WebhookMessageId {
    let id = WebhookMessageId::generate();
    entity::webhook_messages::ActiveModel {
        id: Set(id),
        organization_id: Set(None),
        event_type: Set("user.created".into()),
        payload: Set(json!({})),
        created_at: Set(created_at),
        dispatched_at: Set(dispatched.then_some(created_at)),
    }
    .insert(&app.app.svc.db.write)
    .await
    .unwrap();
    id
}

async fn count<E: EntityTrait>(app: &TestApp) -> u64
where
    E::Model: Sync,
{
    E::find().count(&app.app.svc.db.read).await.unwrap()
}

#[tokio::test]
async fn pruning_removes_exactly_what_is_past_retention_in_bounded_batches() {
    let app = spawn_with(|c| {
        c.operations.retention_batch_size = 2;
        c.operations.session_retention = Duration::days(1);
    })
    .await;
    // The passes are run by hand here, and no dispatcher marks messages dispatched meanwhile.
    app.workers.abort();
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let project = crate::projects::create_project(&app, &ana, "Roadmap").await;
    let (_, token) = share(&app, &ana, &project, "VIEW", None).await;
    app.gql(
        None,
        "query($t: String!) { sharedLink(token: $t) { permission } }",
        json!({ "t": token }),
    )
    .await;
    let now = app.clock_now();

    // Past retention: 5 sessions expired 2 days ago, 4 keys of 25 h (one never finished),
    // 3 dispatched webhook messages of 31 days. Within it: a session expired 12 h ago, a
    // key of 23 h, a message of 29 days and an old one not dispatched yet.
    for _ in 0..5 {
        insert_session(&app, &ana.id, now - Duration::days(2)).await;
    }
    let recent_session = insert_session(&app, &ana.id, now - Duration::hours(12)).await;
    for (i, finished) in [true, true, true, false].into_iter().enumerate() {
        insert_key(
            &app,
            &format!("old-{i}"),
            now - Duration::hours(25),
            finished,
        )
        .await;
    }
    insert_key(&app, "recent", now - Duration::hours(23), true).await;
    for _ in 0..3 {
        insert_message(&app, now - Duration::days(31), true).await;
    }
    let kept_messages = [
        insert_message(&app, now - Duration::days(29), true).await,
        insert_message(&app, now - Duration::days(31), false).await,
    ];
    let sessions_before = count::<entity::sessions::Entity>(&app).await;
    let keys_before = count::<entity::idempotency_keys::Entity>(&app).await;
    let messages_before = count::<entity::webhook_messages::Entity>(&app).await;
    let visits = count::<entity::link_visits::Entity>(&app).await;
    let activity = count::<entity::activity_events::Entity>(&app).await;
    assert!(visits >= 1 && activity >= 2, "{visits} {activity}");

    // One statement deletes at most two rows of each kind.
    let batches = [
        prune_batch(&app.app.svc).await.unwrap(),
        prune_batch(&app.app.svc).await.unwrap(),
        prune_batch(&app.app.svc).await.unwrap(),
        prune_batch(&app.app.svc).await.unwrap(),
    ];
    let p = |sessions, idempotency_keys, webhook_messages| Pruned {
        sessions,
        idempotency_keys,
        webhook_messages,
    };
    assert_eq!(batches, [p(2, 2, 2), p(2, 2, 1), p(1, 0, 0), p(0, 0, 0)]);
    assert_eq!(
        count::<entity::sessions::Entity>(&app).await,
        sessions_before - 5
    );
    assert_eq!(
        count::<entity::idempotency_keys::Entity>(&app).await,
        keys_before - 4
    );
    assert_eq!(
        count::<entity::webhook_messages::Entity>(&app).await,
        messages_before - 3
    );
    let db = &app.app.svc.db.read;
    assert!(entity::sessions::Entity::find_by_id(recent_session)
        .one(db)
        .await
        .unwrap()
        .is_some());
    assert!(entity::idempotency_keys::Entity::find_by_id((
        "anonymous".to_string(),
        "recent".to_string()
    ))
    .one(db)
    .await
    .unwrap()
    .is_some());
    for id in kept_messages {
        assert!(entity::webhook_messages::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .is_some());
    }
    // Ana's live session still works.
    let me = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], ana.id.as_str());

    // A year later everything operational has gone, the facts have not.
    app.clock.advance(Duration::days(365));
    let all = prune(&app.app.svc).await.unwrap();
    assert!(all.sessions >= 2, "{all:?}");
    assert_eq!(count::<entity::sessions::Entity>(&app).await, 0);
    assert_eq!(count::<entity::idempotency_keys::Entity>(&app).await, 0);
    let left = entity::webhook_messages::Entity::find()
        .all(db)
        .await
        .unwrap();
    assert!(
        left.iter().all(|m| m.dispatched_at.is_none()),
        "only undispatched ones wait"
    );
    assert!(left.iter().any(|m| m.id == kept_messages[1]));
    assert_eq!(count::<entity::link_visits::Entity>(&app).await, visits);
    assert_eq!(
        count::<entity::activity_events::Entity>(&app).await,
        activity
    );
}

#[tokio::test]
async fn the_background_task_prunes_by_itself_beside_another_instance() {
    let app = spawn_with(|c| {
        c.operations.retention_interval = StdDuration::from_secs(1);
        c.operations.session_retention = Duration::zero();
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    insert_session(&app, &ana.id, app.clock_now() - Duration::seconds(1)).await;
    // A second instance on the same database prunes too; they never delete a row twice.
    let other = crate::helpers::spawn_on(&app.db_url, |c| {
        c.operations.retention_interval = StdDuration::from_secs(1);
        c.operations.session_retention = Duration::zero();
    })
    .await;
    other.clock.set(app.clock_now());
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while count::<entity::sessions::Entity>(&app).await > 1 {
        assert!(
            Instant::now() < deadline,
            "the expired session was not pruned"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let me = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(
        me["data"]["me"]["id"],
        ana.id.as_str(),
        "the live session stays"
    );
}

#[tokio::test]
async fn the_link_cache_stays_within_its_byte_budget() {
    const BUDGET: usize = 50_000;
    let app = spawn_with(|c| c.operations.link_cache_bytes = BUDGET).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "pro").await;
    let create = "mutation($o: ID!, $n: String!, $c: String) { createProject(input: {organizationId: $o, name: $n, content: $c}) { project { id } } }";
    let view = "query($t: String!) { sharedLink(token: $t) { project { content } } }";
    let mut tokens = Vec::new();
    for (i, size) in [20_000, 20_000, 20_000, 60_000].into_iter().enumerate() {
        let content = char::from(b'a' + i as u8).to_string().repeat(size);
        let p = app
            .gql(
                Some(&ana.token),
                create,
                json!({ "o": ana.org_id, "n": format!("P{i}"), "c": content }),
            )
            .await;
        let id = p["data"]["createProject"]["project"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, token) = share(&app, &ana, &id, "VIEW", None).await;
        tokens.push((token, content));
    }
    let cache = &app.app.svc.link_cache;
    // On PostgreSQL the cache serves only once the listener hears the other instances.
    let start = std::time::Instant::now();
    while app.app.svc.bus.epoch().is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "never listening"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for (token, content) in tokens.iter().chain(tokens.iter()) {
        let v = app.gql(None, view, json!({ "t": token })).await;
        assert_eq!(
            v["data"]["sharedLink"]["project"]["content"].as_str(),
            Some(content.as_str())
        );
        let (entries, bytes) = cache.usage();
        assert!(bytes <= BUDGET, "{bytes} bytes cached");
        // Two 20 kB projects fit in 50 kB; the 60 kB one never enters.
        assert!((1..=2).contains(&entries), "{entries} entries");
        assert!(bytes > 20_000, "{bytes} bytes for {entries} entries");
    }
}

async fn get_metrics(addr: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    const TOKEN: &str = "a-long-metrics-token-1234";
    let app = spawn_with(|c| {
        c.operations.metrics_token = Some(kfactor::config::Secret(TOKEN.as_bytes().to_vec()))
    })
    .await;
    let addr = app.addr.to_string();
    for wrong in [None, Some("a-long-metrics-token-1235"), Some("")] {
        let (status, body) = get_metrics(&addr, wrong).await;
        assert_eq!(status, 401, "{wrong:?}");
        assert!(!body.contains("kfactor_http"), "{body}");
    }
    app.gql(None, "{ __typename }", json!({})).await;
    let (status, body) = get_metrics(&addr, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(body.contains("kfactor_http_requests_total"), "{body}");
}

#[tokio::test]
async fn metrics_can_live_on_an_address_of_their_own() {
    // A free port for the metrics address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let bind = metrics_addr.parse().unwrap();
    let app = spawn_with(|c| c.operations.metrics_bind = Some(bind)).await;
    app.gql(None, "{ __typename }", json!({})).await;
    let (status, _) = get_metrics(&app.addr.to_string(), None).await;
    assert_eq!(status, 404, "not on the public address");
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let body = loop {
        match reqwest::get(format!("http://{metrics_addr}/metrics")).await {
            Ok(r) => {
                assert_eq!(r.status().as_u16(), 200);
                break r.text().await.unwrap();
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "metrics address not listening: {e}"
            ),
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    assert!(body.contains("kfactor_http_requests_total"), "{body}");
    // The GraphQL API is not on the metrics address.
    let r = reqwest::Client::new()
        .post(format!("http://{metrics_addr}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
