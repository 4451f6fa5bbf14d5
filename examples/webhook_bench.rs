//! Webhook throughput and latency: enqueues events for 10 endpoints on a local receiver and
//! measures end-to-end deliveries/s and event→delivery latency (commit → request received).
//! Run through `bench/webhooks`.
use entity::ids::UserId;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    http::{HeaderMap, Uri},
    Router,
};
use kfactor::{
    clock::SystemClock,
    config::Config,
    db::Tx,
    domain::{ids::OrgId, webhooks},
    outbox::{self, WebhookEvent},
    App,
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::json;

/// (endpoint path, webhook-id, when received)
type Seen = Arc<Mutex<Vec<(String, String, Instant)>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db_url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite:///tmp/kfactor-webhook-bench.db?mode=rwc".into());
    let events: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let endpoints: usize = 10;

    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let s = s.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            s.lock()
                .unwrap()
                .push((uri.path().to_string(), id, Instant::now()));
            ""
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut config = Config::for_database(&db_url);
    config.webhook_allow_http = true;
    config.webhook_allow_private = true;
    config.log = "warn".into();
    if let Some(n) = std::env::var("KFACTOR_WEBHOOK_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.webhook_concurrency = n;
    }
    let kf = App::build(config, Arc::new(SystemClock)).await?;
    let svc = kf.svc.clone();
    // One organization, and 10 platform endpoints (created by a staff user, with real
    // signing secrets) that receive its events.
    let now = svc.now();
    let org = OrgId::generate();
    entity::organizations::ActiveModel {
        id: Set(org),
        name: Set("Bench".into()),
        invite_policy: Set(entity::enums::InvitePolicy::AnyMember),
        plan_key: Set("free".into()),
        billing_anchor: Set(now),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&svc.db.write)
    .await?;
    let staff = entity::users::ActiveModel {
        id: Set(UserId::generate()),
        email: Set("bench@example.com".into()),
        name: Set("Bench".into()),
        password_hash: Set(String::new()),
        acquisition_source: Set(entity::enums::AcquisitionSource::Organic),
        invited_by_user_id: Set(None),
        invite_token_id: Set(None),
        utm_source: Set(None),
        referral_code: Set("bench".into()),
        activated_at: Set(None),
        is_staff: Set(true),
        active_organization_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&svc.db.write)
    .await?;
    for i in 0..endpoints {
        webhooks::create(
            &svc,
            kfactor::domain::access::Caller::User(&staff),
            webhooks::NewEndpoint {
                org: None,
                url: &format!("http://{addr}/e{i}"),
                event_types: &[],
                description: None,
            },
        )
        .await?;
    }
    let _workers = kf.spawn_workers()?;

    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let emit = |n: usize| {
        let svc = svc.clone();
        let committed = committed.clone();
        async move {
            let mut tx = Tx::begin(&svc.db).await.unwrap();
            let mut ids = Vec::new();
            for _ in 0..n {
                let m = outbox::webhook(&mut tx, svc.now(), Some(org), WebhookEvent {
                    event_type: "user.activated",
                    data: json!({ "user_id": "usr_bench", "organization_id": org.to_string(), "source": "bench" }),
                })
                .await
                .unwrap();
                ids.push(outbox::message_id(m.id));
            }
            tx.commit(&svc.bus).await.unwrap();
            let t = Instant::now();
            let mut c = committed.lock().unwrap();
            for id in ids {
                c.insert(id, t);
            }
        }
    };
    let wait_for = |n: usize| {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            while seen.lock().unwrap().len() < n {
                assert!(Instant::now() < deadline, "timed out");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let latencies = |from: usize| -> Vec<f64> {
        let c = committed.lock().unwrap();
        let mut l: Vec<f64> = seen.lock().unwrap()[from..]
            .iter()
            .filter_map(|(_, id, at)| {
                c.get(id)
                    .map(|t| at.saturating_duration_since(*t).as_secs_f64() * 1000.0)
            })
            .collect();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
        l
    };
    let pct = |l: &[f64], p: f64| l[((l.len() as f64 - 1.0) * p).round() as usize];

    // 1. Backlog: every event at once (100 per transaction).
    let start = Instant::now();
    for _ in 0..events / 100 {
        emit(100).await;
    }
    let total = events / 100 * 100 * endpoints;
    wait_for(total).await;
    let secs = start.elapsed().as_secs_f64();
    let l = latencies(0);
    let backend = if db_url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "webhooks backend={backend} phase=backlog events={events} endpoints={endpoints} deliveries={total} secs={secs:.2} deliveries_per_s={:.0} p50_ms={:.1} p99_ms={:.1}",
        total as f64 / secs,
        pct(&l, 0.5),
        pct(&l, 0.99)
    );

    // 2. Steady, not backlogged: one event every 20 ms for 200 events.
    let before = seen.lock().unwrap().len();
    for _ in 0..200 {
        emit(1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(before + 200 * endpoints).await;
    let l = latencies(before);
    println!(
        "webhooks backend={backend} phase=steady events_per_s=50 endpoints={endpoints} p50_ms={:.1} p99_ms={:.1}",
        pct(&l, 0.5),
        pct(&l, 0.99)
    );

    // 3. Exactly once: every delivery recorded as succeeded with one attempt, and no
    // endpoint received a message twice.
    use entity::{webhook_attempts as attempts, webhook_deliveries as deliveries};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let expected = (events / 100 * 100 + 200) * endpoints;
    let deadline = Instant::now() + Duration::from_secs(60);
    let succeeded = loop {
        let n = deliveries::Entity::find()
            .filter(deliveries::Column::Status.eq("succeeded"))
            .count(&svc.db.read)
            .await? as usize;
        if n >= expected || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let recorded = deliveries::Entity::find().count(&svc.db.read).await? as usize;
    let attempts = attempts::Entity::find().count(&svc.db.read).await? as usize;
    let received = seen.lock().unwrap().len();
    let distinct = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(path, id, _)| (path.clone(), id.clone()))
        .collect::<std::collections::HashSet<_>>()
        .len();
    let exact = recorded == expected
        && succeeded == expected
        && attempts == expected
        && received == expected
        && distinct == expected;
    println!(
        "webhooks backend={backend} phase=check expected={expected} deliveries={recorded} succeeded={succeeded} attempts={attempts} received={received} duplicates={} exact={exact}",
        received - distinct
    );
    anyhow::ensure!(exact, "deliveries were lost or duplicated");
    Ok(())
}
