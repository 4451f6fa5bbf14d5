//! Signed outbound webhooks: endpoints, Standard Webhooks signatures (checked by our own
//! verifier and by the third-party `standardwebhooks` package), retries, leases, the SSRF
//! guard and the operator tools, against a real HTTP receiver.
use std::{collections::HashSet, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use kfactor::db::Tx;
use kfactor::{
    config::Config,
    domain::ids::OrgId,
    outbox::{self, WebhookEvent},
};
use serde_json::{json, Value};

use crate::helpers::{
    error_codes,
    receiver::{verify, verify_with_python, Receiver, Reply},
    spawn_on, spawn_with, user_error_codes, TestApp, TestUser,
};

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id url eventTypes enabled description } secret userErrors { code message field } } }";
const ENDPOINTS: &str = "query($o: ID!) { organization(id: $o) { webhookEndpoints { id url enabled disabledReason eventTypes deliveries { totalCount nodes { id messageId eventType status nextAttemptAt payload attempts { at responseStatus durationMs error manual responseBody } } } } } }";

fn schedule(secs: &[u64]) -> Vec<StdDuration> {
    secs.iter().map(|s| StdDuration::from_secs(*s)).collect()
}

/// An app that may send to the local receiver, retrying quickly: 0, 1, 1, 1 s.
async fn wh_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_with(|c| {
        local(c);
        tweak(c)
    })
    .await
}

pub(crate) fn local(c: &mut Config) {
    c.webhook_allow_http = true;
    c.webhook_allow_private = true;
    c.webhook_retry_schedule = schedule(&[0, 1, 1, 1]);
}

pub(crate) async fn create_endpoint(
    app: &TestApp,
    token: &str,
    org: Option<&str>,
    url: &str,
    types: &[&str],
) -> (String, String) {
    if let Some(org) = org {
        // Webhooks are a Pro feature.
        app.enable_feature(org, "webhooks").await;
    }
    let body = app
        .gql(
            Some(token),
            CREATE,
            json!({ "i": { "organizationId": org, "url": url, "eventTypes": types } }),
        )
        .await;
    let p = &body["data"]["createWebhookEndpoint"];
    assert_eq!(p["userErrors"], json!([]), "{body}");
    (
        p["endpoint"]["id"].as_str().unwrap().to_string(),
        p["secret"].as_str().unwrap().to_string(),
    )
}

pub(crate) async fn send_test(app: &TestApp, token: &str, endpoint: &str) -> String {
    let body = app
        .gql(
            Some(token),
            "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { delivery { id messageId eventType status } userErrors { code } } }",
            json!({ "e": endpoint }),
        )
        .await;
    let p = &body["data"]["sendTestWebhook"];
    assert_eq!(p["userErrors"], json!([]), "{body}");
    assert_eq!(p["delivery"]["eventType"], "webhook.test");
    p["delivery"]["id"].as_str().unwrap().to_string()
}

/// The org's endpoints with their deliveries.
async fn endpoints(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let body = app
        .gql(Some(&user.token), ENDPOINTS, json!({ "o": user.org_id }))
        .await;
    body["data"]["organization"]["webhookEndpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone()
}

/// Polls the first delivery of the org's first endpoint until `done` holds.
async fn wait_delivery(app: &TestApp, user: &TestUser, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..1000 {
        let eps = endpoints(app, user).await;
        if let Some(d) = eps[0]["deliveries"]["nodes"].get(0) {
            if done(d) {
                return d.clone();
            }
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    panic!(
        "delivery never reached the expected state: {:?}",
        endpoints(app, user).await
    );
}

fn attempts(d: &Value) -> usize {
    d["attempts"].as_array().unwrap().len()
}

/// `n` attempts made and the next one scheduled. (The delivery row and its attempts are
/// read by separate queries, so a poll may see the new attempt beside the old schedule.)
fn retry_scheduled(app: &TestApp, d: &Value, n: usize) -> bool {
    attempts(d) == n
        && d["status"] == "PENDING"
        && d["nextAttemptAt"].is_string()
        && ts(&d["nextAttemptAt"]) > app.clock_now()
}

/// Writes a webhook message of `org` as a domain transaction would.
async fn emit(app: &TestApp, org: &str, event_type: &'static str) {
    let svc = &app.app.svc;
    let mut tx = Tx::begin(&svc.db).await.unwrap();
    outbox::webhook(
        &mut tx,
        app.clock_now(),
        Some(OrgId::parse(org).unwrap()),
        WebhookEvent {
            event_type,
            data: json!({ "organization_id": org }),
        },
    )
    .await
    .unwrap();
    tx.commit(&svc.bus).await.unwrap();
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn deliveries_are_signed_and_third_party_verifiers_accept_them() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, secret) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/hook"), &[]).await;
    assert!(id.starts_with("whe_"));
    assert!(secret.starts_with("whsec_"));
    let delivery = send_test(&app, &ana.token, &id).await;

    let got = rx.wait_for(1).await;
    let r = &got[0];
    assert!(r.header("webhook-id").starts_with("msg_"));
    assert_eq!(r.header("content-type"), "application/json");
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    assert_eq!(ts, app.clock_now().timestamp());
    let body = r.json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"]["endpoint_id"], id);
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(verify(&secret, r), "our verifier accepts it");
    assert!(
        !verify(&format!("whsec_{}", "A".repeat(32)), r),
        "another secret does not verify"
    );
    if let Some(ok) = verify_with_python(&secret, r) {
        assert!(ok, "standardwebhooks accepts the delivery");
    }

    let d = wait_delivery(&app, &ana, |d| d["status"] == "SUCCEEDED").await;
    assert_eq!(d["id"], delivery);
    assert_eq!(d["messageId"], r.header("webhook-id"));
    assert_eq!(d["payload"], body);
    assert_eq!(d["nextAttemptAt"], Value::Null);
    assert_eq!(d["attempts"][0]["responseStatus"], 200);
    assert_eq!(d["attempts"][0]["error"], Value::Null);

    // A real domain event reaches the endpoint too: inviting someone is `invitation.sent`.
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($i: CreateInvitationsInput!) { createInvitations(input: $i) { userErrors { code } } }",
            json!({ "i": { "organizationId": ana.org_id, "emails": ["bo@example.com"], "role": "MEMBER" } }),
        )
        .await;
    assert_eq!(
        body["data"]["createInvitations"]["userErrors"],
        json!([]),
        "{body}"
    );
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["type"], "invitation.sent");
    assert!(verify(&secret, &got[1]));
}

#[tokio::test]
async fn rotation_signs_with_old_and_new_secrets_until_the_old_expires() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, old) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($e: ID!) { rotateWebhookSecret(id: $e, expireOldAfterSeconds: 3600) { endpoint { id } secret userErrors { code } } }",
            json!({ "e": id }),
        )
        .await;
    let new = body["data"]["rotateWebhookSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new, old);

    send_test(&app, &ana.token, &id).await;
    let r = rx.wait_for(1).await.remove(0);
    assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
    assert!(verify(&new, &r) && verify(&old, &r), "both secrets verify");
    for s in [&new, &old] {
        if let Some(ok) = verify_with_python(s, &r) {
            assert!(ok);
        }
    }

    // After the grace period only the new secret signs.
    app.advance(Duration::seconds(3601));
    send_test(&app, &ana.token, &id).await;
    let r = rx.wait_for(2).await.remove(1);
    assert_eq!(r.header("webhook-signature").split(' ').count(), 1);
    assert!(verify(&new, &r) && !verify(&old, &r));

    // The secret is never readable again.
    let body = app
        .post(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { webhookEndpoints { secret } } }",
            json!({ "o": ana.org_id }),
        )
        .await
        .1;
    assert!(body["errors"].is_array(), "{body}");
}

#[tokio::test]
async fn failing_deliveries_retry_on_schedule_with_the_same_webhook_id_then_fail() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    rx.script([Reply::Status(500), Reply::Status(502), Reply::Status(500)]);
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    send_test(&app, &ana.token, &id).await;
    for n in 1..=3 {
        let d = wait_delivery(&app, &ana, |d| retry_scheduled(&app, d, n)).await;
        assert_eq!(d["status"], "PENDING");
        // 1 s ± 20% after this attempt.
        let wait = ts(&d["nextAttemptAt"]) - app.clock_now();
        assert!(
            wait >= Duration::milliseconds(800) && wait <= Duration::milliseconds(1200),
            "{wait}"
        );
        app.advance(Duration::seconds(2));
    }
    let d = wait_delivery(&app, &ana, |d| d["status"] == "SUCCEEDED").await;
    assert_eq!(attempts(&d), 4);
    assert_eq!(d["attempts"][0]["responseStatus"], 500);
    assert_eq!(d["attempts"][1]["responseStatus"], 502);
    assert!(d["attempts"][0]["error"].as_str().unwrap().contains("500"));
    let got = rx.received();
    assert_eq!(got.len(), 4);
    let ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every retry");

    // A receiver that never recovers: FAILED after the last step of the schedule.
    let app = wh_app(|c| c.webhook_retry_schedule = schedule(&[0, 1])).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Status(500));
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let (id, _) = create_endpoint(&app, &bo.token, Some(&bo.org_id), &rx.url("/"), &[]).await;
    send_test(&app, &bo.token, &id).await;
    wait_delivery(&app, &bo, |d| attempts(d) == 1).await;
    app.advance(Duration::seconds(2));
    let d = wait_delivery(&app, &bo, |d| d["status"] == "FAILED").await;
    assert_eq!(attempts(&d), 2);
    assert_eq!(d["nextAttemptAt"], Value::Null);
}

/// Attempts finishing together are recorded together (one transaction per batch): under a
/// burst every delivery still gets exactly its own attempts and the right end state, and an
/// endpoint's health follows its own answers, not its neighbours'.
#[tokio::test]
async fn a_burst_to_healthy_and_failing_endpoints_records_every_attempt_once() {
    const N: usize = 100;
    let app = wh_app(|c| c.webhook_retry_schedule = schedule(&[0])).await;
    let ok = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.set_default(Reply::Status(500));
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (ok_id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &ok.url("/"), &[]).await;
    let (bad_id, _) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &bad.url("/"), &[]).await;
    for _ in 0..N {
        emit(&app, &ana.org_id, "user.activated").await;
    }
    ok.wait_for(N).await;
    bad.wait_for(N).await;

    const Q: &str = "query($o: ID!) { organization(id: $o) { webhookEndpoints { id enabled disabledReason deliveries(first: 100) { totalCount nodes { status nextAttemptAt attempts { responseStatus } } } } } }";
    let mut eps = Vec::new();
    for _ in 0..500 {
        let body = app
            .gql(Some(&ana.token), Q, json!({ "o": ana.org_id }))
            .await;
        eps = body["data"]["organization"]["webhookEndpoints"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .clone();
        let settled = eps.iter().all(|e| {
            e["deliveries"]["nodes"]
                .as_array()
                .is_some_and(|ds| ds.len() == N && ds.iter().all(|d| d["status"] != "PENDING"))
        });
        if settled {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    for e in &eps {
        let (status, code) = if e["id"] == ok_id.as_str() {
            ("SUCCEEDED", 200)
        } else {
            assert_eq!(e["id"], bad_id.as_str());
            ("FAILED", 500)
        };
        assert_eq!(e["deliveries"]["totalCount"], N, "{e}");
        for d in e["deliveries"]["nodes"].as_array().unwrap() {
            assert_eq!(d["status"], status, "{d}");
            assert_eq!(d["nextAttemptAt"], Value::Null, "{d}");
            assert_eq!(d["attempts"], json!([{ "responseStatus": code }]), "{d}");
        }
        // Failing for seconds is far from the five days that disable an endpoint.
        assert_eq!(e["enabled"], true, "{e}");
    }
    let ids: HashSet<String> = ok
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(
        ids.len(),
        N,
        "each message reached the healthy endpoint once"
    );
    assert_eq!(ok.received().len(), N);
    assert_eq!(
        bad.received().len(),
        N,
        "an exhausted delivery is not sent again"
    );
}

/// A binary answer (NUL bytes, which PostgreSQL text cannot hold) is still logged, and the
/// delivery still moves on.
#[tokio::test]
async fn binary_response_bodies_are_logged() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    rx.script([
        Reply::Body(500, b"\x00\x01oops\x00"),
        Reply::Body(200, b"ok\x00"),
    ]);
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    send_test(&app, &ana.token, &id).await;
    wait_delivery(&app, &ana, |d| retry_scheduled(&app, d, 1)).await;
    app.advance(Duration::seconds(2));
    let d = wait_delivery(&app, &ana, |d| d["status"] == "SUCCEEDED").await;
    let bodies: Vec<&str> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["responseBody"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "{d}");
    assert!(bodies.iter().any(|b| b.contains("oops")), "{d}");
    assert!(bodies.iter().any(|b| b.starts_with("ok")), "{d}");
}

/// A graceful stop (SIGTERM, a deploy): attempts in flight finish and are recorded before the
/// dispatcher stops, so the next instance sends none of them again; nothing new is claimed.
#[tokio::test]
async fn a_graceful_stop_records_the_attempts_in_flight() {
    let mut app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Delay(500));
    let ana = app.sign_up("Ana", "ana@example.com").await;
    create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    for _ in 0..3 {
        emit(&app, &ana.org_id, "user.activated").await;
    }
    rx.wait_for(3).await;
    tokio::time::timeout(StdDuration::from_secs(10), app.workers.shutdown())
        .await
        .expect("the workers stop once the attempts in flight are recorded");

    let eps = endpoints(&app, &ana).await;
    let nodes = eps[0]["deliveries"]["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3);
    for d in &nodes {
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        assert_eq!(attempts(d), 1, "{d}");
    }
    // Stopped means its tasks have ended, so nothing can send what is written now…
    assert!(app.workers.finished(), "shutdown joined the workers");
    emit(&app, &ana.org_id, "user.activated").await;
    app.app.svc.bus.wake_webhooks();
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let waiting = entity::webhook_messages::Entity::find()
        .filter(entity::webhook_messages::Column::DispatchedAt.is_null())
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1, "the new message waits, not fanned out");
    assert_eq!(rx.received().len(), 3);
    // …and a new dispatcher sends it, once.
    app.workers = app.app.spawn_workers().unwrap();
    let got = rx.wait_for(4).await;
    assert_eq!(
        got[3].header("webhook-id"),
        kfactor::outbox::message_id(waiting[0].id)
    );
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    let d = loop {
        let eps = endpoints(&app, &ana).await;
        let nodes = eps[0]["deliveries"]["nodes"].as_array().unwrap().clone();
        let found = nodes
            .iter()
            .find(|d| d["messageId"] == got[3].header("webhook-id") && d["status"] == "SUCCEEDED")
            .cloned();
        if let Some(d) = found {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{nodes:?}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    assert_eq!(attempts(&d), 1, "{d}");
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_retry_after_is_honoured() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    rx.script([Reply::RetryAfter(503, 120)]);
    let (id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    send_test(&app, &ana.token, &id).await;
    let d = wait_delivery(&app, &ana, |d| retry_scheduled(&app, d, 1)).await;
    assert_eq!(d["attempts"][0]["responseStatus"], 503);
    assert_eq!(
        ts(&d["nextAttemptAt"]) - app.clock_now(),
        Duration::seconds(120),
        "Retry-After replaces the 1 s step"
    );
    app.advance(Duration::seconds(121));
    wait_delivery(&app, &ana, |d| d["status"] == "SUCCEEDED").await;

    rx.script([Reply::Status(410)]);
    send_test(&app, &ana.token, &id).await;
    let d = wait_delivery(&app, &ana, |d| d["status"] == "FAILED").await;
    assert_eq!(d["attempts"][0]["responseStatus"], 410);
    let ep = &endpoints(&app, &ana).await[0];
    assert_eq!(ep["enabled"], false);
    assert!(ep["disabledReason"].as_str().unwrap().contains("410"));
    let body = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity { nodes { type summary } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        body["data"]["organization"]["activity"]["nodes"][0]["type"],
        "WEBHOOK_DISABLED"
    );
    // A disabled endpoint refuses test sends until it is enabled again.
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { userErrors { code } } }",
            json!({ "e": id }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["sendTestWebhook"]),
        ["INVALID_INPUT"]
    );
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($e: ID!) { updateWebhookEndpoint(id: $e, enabled: true) { endpoint { enabled disabledReason } userErrors { code } } }",
            json!({ "e": id }),
        )
        .await;
    assert_eq!(
        body["data"]["updateWebhookEndpoint"]["endpoint"],
        json!({ "enabled": true, "disabledReason": null })
    );
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled() {
    let app = wh_app(|c| c.webhook_retry_schedule = schedule(&[0, 1, 1, 1, 1])).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Status(500));
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    send_test(&app, &ana.token, &id).await;
    wait_delivery(&app, &ana, |d| attempts(d) == 1).await;
    app.advance(Duration::days(4));
    wait_delivery(&app, &ana, |d| attempts(d) == 2).await;
    assert_eq!(endpoints(&app, &ana).await[0]["enabled"], true, "4 days");
    app.advance(Duration::days(1) + Duration::minutes(1));
    wait_delivery(&app, &ana, |d| attempts(d) == 3).await;
    let ep = &endpoints(&app, &ana).await[0];
    assert_eq!(ep["enabled"], false, "{ep}");
    assert!(ep["disabledReason"]
        .as_str()
        .unwrap()
        .contains("failed for 5 days"));
}

#[tokio::test]
async fn private_addresses_are_refused_at_connect_time_unless_allowed() {
    let strict = |c: &mut Config| {
        local(c);
        c.webhook_allow_private = false;
    };
    let app = spawn_with(strict).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    // A literal private address is refused at creation, in words that never repeat it…
    for url in [
        rx.url("/"),
        "http://169.254.169.254/latest".to_string(),
        "https://[64:ff9b:1::a00:1]/".to_string(),
        "https://[fec0::1]/".to_string(),
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/".to_string(),
        "https://192.0.2.10/".to_string(),
    ] {
        let body = app
            .gql(
                Some(&ana.token),
                CREATE,
                json!({ "i": { "organizationId": ana.org_id, "url": url } }),
            )
            .await;
        let p = &body["data"]["createWebhookEndpoint"];
        assert_eq!(user_error_codes(p), ["INVALID_INPUT"], "{body}");
        assert_eq!(p["userErrors"][0]["field"], json!(["input", "url"]));
        let message = p["userErrors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("refused: private address"), "{message}");
        let host = reqwest::Url::parse(&url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string();
        let bare = host.trim_matches(|c| c == '[' || c == ']');
        assert!(!message.contains(bare), "{message} names {bare}");
    }
    // …and a name is checked on its resolved address when connecting.
    let url = format!("http://localhost:{}/hook", rx.addr.port());
    let (id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &url, &[]).await;
    send_test(&app, &ana.token, &id).await;
    let d = wait_delivery(&app, &ana, |d| attempts(d) == 1).await;
    let err = d["attempts"][0]["error"].as_str().unwrap();
    // The attempt says why without the address the name resolved to.
    assert!(err.contains("refused: private address"), "{err}");
    for resolved in ["127.0.0.1", "::1", "loopback"] {
        assert!(!err.contains(resolved), "{err} names {resolved}");
    }
    assert_eq!(d["attempts"][0]["responseStatus"], Value::Null);
    assert!(rx.received().is_empty(), "nothing reached the address");

    // KFACTOR_WEBHOOK_ALLOW_PRIVATE lifts the guard (here: a restart with the flag).
    app.kill();
    let allowed = spawn_on(&app.db_url, local).await;
    allowed.advance(Duration::seconds(2));
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].path, "/hook");
    wait_delivery(&allowed, &ana, |d| d["status"] == "SUCCEEDED").await;

    // https is required unless http is allowed.
    let body = allowed
        .gql(
            Some(&ana.token),
            CREATE,
            json!({ "i": { "organizationId": ana.org_id, "url": "ftp://example.com" } }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["createWebhookEndpoint"]),
        ["INVALID_INPUT"]
    );
    let strict_http = spawn_on(&app.db_url, |c| c.webhook_allow_private = true).await;
    let body = strict_http
        .gql(
            Some(&ana.token),
            CREATE,
            json!({ "i": { "organizationId": ana.org_id, "url": "http://example.com/hook" } }),
        )
        .await;
    let p = &body["data"]["createWebhookEndpoint"];
    assert_eq!(user_error_codes(p), ["INVALID_INPUT"]);
    assert!(p["userErrors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("https"));
}

/// The crash tests' end state: once all four deliveries (three in flight at the crash, one
/// written after it) succeeded, the requests since the crash carried exactly their messages,
/// correctly signed. False while some are still pending.
fn recovered(rx: &Receiver, secret: &str, nodes: &[Value], what: &str) -> bool {
    if nodes.len() != 4 || nodes.iter().any(|d| d["status"] != "SUCCEEDED") {
        return false;
    }
    let delivered: HashSet<String> = rx
        .received()
        .into_iter()
        .skip(3)
        .inspect(|r| assert!(verify(secret, r)))
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    let want: HashSet<String> = nodes
        .iter()
        .map(|d| d["messageId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered, want, "{what}");
    true
}

#[tokio::test]
async fn pending_and_in_flight_deliveries_survive_a_crash() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Hang);
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, secret) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    for _ in 0..3 {
        send_test(&app, &ana.token, &id).await;
    }
    rx.wait_for(3).await; // three requests in flight, their deliveries leased
    app.kill();
    // Written after the crash, not yet fanned out.
    emit(&app, &ana.org_id, "user.activated").await;
    rx.set_default(Reply::Status(200));

    let restarted = spawn_on(&app.db_url, local).await;
    // The dead instance's leases expire; the new one reclaims them.
    restarted.advance(Duration::seconds(61));
    for _ in 0..1000 {
        let eps = endpoints(&restarted, &ana).await;
        let nodes = eps[0]["deliveries"]["nodes"].as_array().unwrap().clone();
        if recovered(
            &rx,
            &secret,
            &nodes,
            "every message delivered after the restart",
        ) {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    panic!(
        "not all deliveries succeeded: {:?}",
        endpoints(&restarted, &ana).await
    );
}

#[tokio::test]
#[ignore = "PostgreSQL only: TEST_DATABASE_URL=… cargo test -- --include-ignored"]
async fn two_instances_on_one_postgres_deliver_each_message_once() {
    crate::helpers::require_postgres();
    let a = wh_app(|_| {}).await;
    let b = spawn_on(&a.db_url, local).await;
    let rx = Receiver::start().await;
    let ana = a.sign_up("Ana", "ana@example.com").await;
    create_endpoint(&a, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    const N: usize = 60;
    for i in 0..N {
        let app = if i % 2 == 0 { &a } else { &b };
        emit(app, &ana.org_id, "user.activated").await;
        b.app.svc.bus.wake_webhooks();
    }
    let got = rx.wait_for(N).await;
    for _ in 0..200 {
        let eps = endpoints(&a, &ana).await;
        if eps[0]["deliveries"]["totalCount"] == N {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    wait_delivery(&a, &ana, |d| d["status"] == "SUCCEEDED").await;
    // A duplicate would be a second claim of a delivery whose attempt may still be in
    // flight: stop both dispatchers gracefully (each finishes and records what it sent), so
    // whatever either sent has arrived before counting.
    let (mut a, mut b) = (a, b);
    for w in [&mut a.workers, &mut b.workers] {
        tokio::time::timeout(StdDuration::from_secs(30), w.shutdown())
            .await
            .expect("the dispatchers stop");
    }
    let got_after = rx.received();
    let ids: HashSet<&str> = got_after.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), N);
    assert_eq!(got_after.len(), N, "no message was sent twice");
    assert!(got.len() >= N);
}

#[tokio::test]
async fn event_type_filters_and_platform_endpoints() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let staff = app.sign_up("Sam", "sam@example.com").await;
    kfactor::domain::identity::set_staff(&app.app.svc, &staff.email, true)
        .await
        .unwrap();
    create_endpoint(
        &app,
        &ana.token,
        Some(&ana.org_id),
        &rx.url("/a"),
        &["invitation.sent"],
    )
    .await;
    create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/b"), &[]).await;
    create_endpoint(&app, &staff.token, None, &rx.url("/p"), &[]).await;

    // Only staff create or see platform endpoints.
    let body = app
        .gql(
            Some(&ana.token),
            CREATE,
            json!({ "i": { "url": rx.url("/x") } }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["createWebhookEndpoint"]),
        ["PERMISSION_DENIED"]
    );
    let body = app
        .post(Some(&ana.token), "{ webhookEndpoints { id } }", json!({}))
        .await
        .1;
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    let body = app
        .gql(
            Some(&staff.token),
            "{ webhookEndpoints { url organization: id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["webhookEndpoints"].as_array().unwrap().len(),
        1
    );

    // Unknown event types are refused.
    let body = app
        .gql(
            Some(&ana.token),
            CREATE,
            json!({ "i": { "organizationId": ana.org_id, "url": rx.url("/y"), "eventTypes": ["user.activated", "nope"] } }),
        )
        .await;
    let p = &body["data"]["createWebhookEndpoint"];
    assert_eq!(user_error_codes(p), ["INVALID_INPUT"]);
    assert_eq!(
        p["userErrors"][0]["field"],
        json!(["input", "eventTypes", "1"])
    );

    emit(&app, &ana.org_id, "invitation.sent").await;
    emit(&app, &ana.org_id, "referral.signup").await;
    emit(&app, &bo.org_id, "invitation.sent").await;
    rx.wait_for(6).await;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let total = entity::webhook_deliveries::Entity::find()
        .count(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(total, 6, "one delivery per matching endpoint per message");
    let types = |p: &str| -> Vec<String> {
        let mut t: Vec<String> = rx
            .received_at(p)
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    assert_eq!(types("/a"), ["invitation.sent"]);
    assert_eq!(types("/b"), ["invitation.sent", "referral.signup"]);
    assert_eq!(
        types("/p"),
        ["invitation.sent", "invitation.sent", "referral.signup"]
    );
}

#[tokio::test]
async fn redeliver_sends_again_with_the_same_webhook_id_and_old_deliveries_are_pruned() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    let delivery = send_test(&app, &ana.token, &id).await;
    wait_delivery(&app, &ana, |d| d["status"] == "SUCCEEDED").await;
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($d: ID!) { redeliverWebhook(deliveryId: $d) { delivery { id status } userErrors { code } } }",
            json!({ "d": delivery }),
        )
        .await;
    assert_eq!(
        body["data"]["redeliverWebhook"]["delivery"],
        json!({ "id": delivery, "status": "PENDING" })
    );
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let d = wait_delivery(&app, &ana, |d| {
        attempts(d) == 2 && d["status"] == "SUCCEEDED"
    })
    .await;
    assert_eq!(d["attempts"][0]["manual"], false);
    assert_eq!(d["attempts"][1]["manual"], true);

    // Status filter of the connection.
    let q = "query($o: ID!, $s: DeliveryStatus) { organization(id: $o) { webhookEndpoints { deliveries(status: $s) { totalCount } } } }";
    for (s, n) in [("SUCCEEDED", 1), ("FAILED", 0), ("PENDING", 0)] {
        let body = app
            .gql(Some(&ana.token), q, json!({ "o": ana.org_id, "s": s }))
            .await;
        assert_eq!(
            body["data"]["organization"]["webhookEndpoints"][0]["deliveries"]["totalCount"], n,
            "{s}"
        );
    }

    // Retention: finished deliveries older than KFACTOR_WEBHOOK_RETENTION_DAYS are pruned,
    // with their attempts.
    let pruned = |app: &TestApp| {
        let svc = app.app.svc.clone();
        async move {
            kfactor::retention::prune(&svc)
                .await
                .unwrap()
                .webhook_messages
        }
    };
    app.clock.advance(Duration::days(29));
    assert_eq!(pruned(&app).await, 0);
    app.clock.advance(Duration::days(2));
    assert_eq!(pruned(&app).await, 1);
    use sea_orm::{EntityTrait, PaginatorTrait};
    let attempts_left = entity::webhook_attempts::Entity::find()
        .count(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(attempts_left, 0);
    let left = entity::webhook_deliveries::Entity::find()
        .count(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn other_tenants_and_members_cannot_see_or_touch_endpoints() {
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let cy = app.sign_up("Cy", "cy@example.com").await;
    app.add_member(&ana.org_id, &cy.id, "member").await;
    let (id, _) = create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    let delivery = send_test(&app, &ana.token, &id).await;
    rx.wait_for(1).await;

    // Bo (another org) cannot list, change, delete, rotate, test or redeliver.
    let body = app
        .post(Some(&bo.token), ENDPOINTS, json!({ "o": ana.org_id }))
        .await
        .1;
    assert_eq!(error_codes(&body), ["FORBIDDEN"], "{body}");
    let mutations = [
        ("updateWebhookEndpoint", "mutation($e: ID!) { updateWebhookEndpoint(id: $e, url: \"http://127.0.0.1:1/x\") { userErrors { code } } }", &id),
        ("deleteWebhookEndpoint", "mutation($e: ID!) { deleteWebhookEndpoint(id: $e) { userErrors { code } } }", &id),
        ("rotateWebhookSecret", "mutation($e: ID!) { rotateWebhookSecret(id: $e) { secret userErrors { code } } }", &id),
        ("sendTestWebhook", "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { userErrors { code } } }", &id),
        ("redeliverWebhook", "mutation($e: ID!) { redeliverWebhook(deliveryId: $e) { userErrors { code } } }", &delivery),
    ];
    for (name, q, arg) in mutations {
        let body = app.gql(Some(&bo.token), q, json!({ "e": arg })).await;
        assert_eq!(
            user_error_codes(&body["data"][name]),
            ["NOT_FOUND"],
            "{name}: {body}"
        );
        let body = app.gql(Some(&cy.token), q, json!({ "e": arg })).await;
        assert_eq!(
            user_error_codes(&body["data"][name]),
            ["PERMISSION_DENIED"],
            "a MEMBER: {name}: {body}"
        );
    }
    let body = app
        .gql(
            Some(&bo.token),
            CREATE,
            json!({ "i": { "organizationId": ana.org_id, "url": rx.url("/") } }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["createWebhookEndpoint"]),
        ["PERMISSION_DENIED"]
    );
    // A member of the org sees the org but not its webhooks.
    let body = app
        .post(Some(&cy.token), ENDPOINTS, json!({ "o": ana.org_id }))
        .await
        .1;
    assert_eq!(error_codes(&body), ["FORBIDDEN"], "{body}");
    // Nothing changed.
    let eps = endpoints(&app, &ana).await;
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0]["url"], rx.url("/"));
    assert_eq!(rx.received().len(), 1);
}

/// A server process that the test can kill with SIGKILL.
struct Process {
    child: std::process::Child,
    url: String,
}

impl Process {
    fn start(db_url: &str) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kfactor"))
            .arg("serve")
            .env("KFACTOR_DATABASE_URL", db_url)
            .env("KFACTOR_BIND", format!("127.0.0.1:{port}"))
            .env("KFACTOR_LOG", "warn")
            .env("KFACTOR_WEBHOOK_ALLOW_HTTP", "true")
            .env("KFACTOR_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("KFACTOR_WEBHOOK_RETRY_SCHEDULE", "0,1,1,1")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start kfactor");
        Process {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn ready(&self, http: &reqwest::Client) {
        for _ in 0..300 {
            if http
                .get(format!("{}/healthz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!("kfactor did not become ready");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_pending_and_in_flight_deliveries_loses_nothing() {
    // The test app creates the database and the endpoint, then steps aside: the deliveries
    // are sent by a separate `kfactor serve` process that is killed with SIGKILL.
    let app = wh_app(|_| {}).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Hang);
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (id, secret) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), &[]).await;
    app.kill();

    let first = Process::start(&app.db_url);
    first.ready(&app.http).await;
    let test = "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { delivery { id } userErrors { code } } }";
    for _ in 0..3 {
        let resp: Value = app
            .http
            .post(format!("{}/graphql", first.url))
            .bearer_auth(&ana.token)
            .json(&json!({ "query": test, "variables": { "e": id } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            resp["data"]["sendTestWebhook"]["userErrors"],
            json!([]),
            "{resp}"
        );
    }
    rx.wait_for(3).await; // three requests in flight
    drop(first); // SIGKILL
                 // A message committed after the crash, not yet fanned out.
    emit(&app, &ana.org_id, "user.activated").await;
    rx.set_default(Reply::Status(200));

    // The dead process's leases (60 s) expire and the new process delivers everything.
    let second = Process::start(&app.db_url);
    second.ready(&app.http).await;
    let deadline = std::time::Instant::now() + StdDuration::from_secs(120);
    loop {
        let body: Value = app
            .http
            .post(format!("{}/graphql", second.url))
            .bearer_auth(&ana.token)
            .json(&json!({ "query": ENDPOINTS, "variables": { "o": ana.org_id } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let nodes = body["data"]["organization"]["webhookEndpoints"][0]["deliveries"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if recovered(
            &rx,
            &secret,
            &nodes,
            "every message delivered after kill -9",
        ) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered after the restart: {nodes:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
}
