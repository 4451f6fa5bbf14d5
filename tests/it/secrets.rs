//! The server secret: what it seals (webhook signing secrets, idempotent responses) opens only
//! under it or a configured previous secret, a database sealed under an unknown secret is
//! refused at start-up, older formats still open, rotation keeps old links and deliveries
//! working, and `kfactor secrets reseal` moves everything to the current secret.
use std::process::Command;

use kfactor::{
    config::{Config, Secret},
    crypto::{legacy, signing::SigningKey, Keyring, Purpose},
    domain::sealing,
};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    helpers::{
        build_on,
        receiver::{verify, verify_with_python, Receiver},
        spawn_on, spawn_with, TestApp, TestUser,
    },
    webhooks::{create_endpoint, local, send_test},
};
use entity::{idempotency_keys, settings, webhook_secrets};

const A: &str = "secret-a-0123456789abcdef-0123456789abcdef";
const B: &str = "secret-b-0123456789abcdef-0123456789abcdef";

/// Webhooks to the local receiver, with `current` as KFACTOR_SECRET and `previous` as
/// KFACTOR_SECRET_PREVIOUS.
fn keys(current: &'static str, previous: &'static [&'static str]) -> impl FnOnce(&mut Config) {
    move |c| {
        local(c);
        c.secret = Some(Secret(current.as_bytes().to_vec()));
        c.secret_previous = previous
            .iter()
            .map(|p| Secret(p.as_bytes().to_vec()))
            .collect();
    }
}

/// Endpoints here hear only test deliveries (creating projects would send `user.activated`).
const TEST_ONLY: &[&str] = &["webhook.test"];

const CREATE_PROJECT: &str = "mutation($o: ID!, $n: String!) { createProject(input: { organizationId: $o, name: $n }) { project { id name } userErrors { code } } }";

/// `createProject` with an Idempotency-Key; returns (replayed?, body).
async fn idempotent(app: &TestApp, user: &TestUser, key: &str) -> (bool, Value) {
    let resp = app
        .http
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&user.token)
        .header("idempotency-key", key)
        .json(
            &json!({ "query": CREATE_PROJECT, "variables": { "o": user.org_id, "n": "Roadmap" } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    (replayed, resp.json().await.unwrap())
}

/// A shared link of a new project; returns its URL's token.
async fn share(app: &TestApp, user: &TestUser) -> String {
    let project = crate::projects::create_project(app, user, "Shared").await;
    let body = app
        .gql(
            Some(&user.token),
            "mutation($i: CreateSharedLinkInput!) { createSharedLink(input: $i) { sharedLink { url } userErrors { code } } }",
            json!({ "i": { "resourceType": "PROJECT", "resourceId": project, "permission": "VIEW" } }),
        )
        .await;
    let url = body["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    url.rsplit('/').next().unwrap().to_string()
}

/// Whether a guest can open the shared link with `token`.
async fn opens(app: &TestApp, token: &str) -> bool {
    let body = app
        .gql(
            None,
            "query($t: String!) { sharedLink(token: $t) { permission } }",
            json!({ "t": token }),
        )
        .await;
    body["data"]["sharedLink"].is_object()
}

/// Sends a test delivery to `endpoint` and checks that `whsec` verifies it, with our own
/// verifier and with the `standardwebhooks` package.
async fn delivery_verifies(
    app: &TestApp,
    user: &TestUser,
    rx: &Receiver,
    n: usize,
    endpoint: &str,
    whsec: &str,
) {
    send_test(app, &user.token, endpoint).await;
    let got = rx.wait_for(n).await;
    let r = &got[n - 1];
    assert!(verify(whsec, r), "signed with the endpoint's secret");
    if let Some(ok) = verify_with_python(whsec, r) {
        assert!(ok, "standardwebhooks accepts the delivery");
    }
}

async fn secret_rows(app: &TestApp) -> Vec<webhook_secrets::Model> {
    webhook_secrets::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_changed_secret_without_the_old_one_refuses_to_start() {
    let app = spawn_with(keys(A, &[])).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    create_endpoint(
        &app,
        &ana.token,
        Some(&ana.org_id),
        "http://127.0.0.1:9/x",
        TEST_ONLY,
    )
    .await;
    app.kill();

    let err = build_on(&app.db_url, keys(B, &[]))
        .await
        .err()
        .expect("a database sealed under another secret is refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("refusing to start"), "{msg}");
    assert!(
        msg.contains("the key check, 1 webhook signing secret(s)"),
        "{msg}"
    );
    assert!(
        msg.contains("KFACTOR_SECRET_PREVIOUS"),
        "says how to fix it: {msg}"
    );
    assert!(
        !msg.contains(A) && !msg.contains(B),
        "secrets are never printed"
    );

    // The old secret as a previous one is all it takes.
    build_on(&app.db_url, keys(B, &[A]))
        .await
        .expect("starts with the old secret as previous");
}

#[tokio::test]
async fn the_key_check_refuses_a_changed_secret_before_anything_else_is_sealed() {
    let app = spawn_with(keys(A, &[])).await;
    app.kill();
    let err = build_on(&app.db_url, keys(B, &[]))
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("refusing to start: the key check"),
        "{err:#}"
    );
    build_on(&app.db_url, keys(A, &[]))
        .await
        .expect("the same secret starts");
}

#[tokio::test]
async fn a_generated_secret_keeps_opening_after_kfactor_secret_is_set() {
    // No KFACTOR_SECRET: one is generated and stored in the database.
    let app = spawn_with(local).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (endpoint, whsec) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), TEST_ONLY).await;
    let link = share(&app, &ana).await;
    app.kill();
    // Setting KFACTOR_SECRET later: the stored one counts as previous.
    let set = spawn_on(&app.db_url, keys(A, &[])).await;
    assert!(
        opens(&set, &link).await,
        "a link made under the generated secret still opens"
    );
    delivery_verifies(&set, &ana, &rx, 1, &endpoint, &whsec).await;
}

#[tokio::test]
async fn old_formats_open_and_webhook_secrets_are_converted_at_start() {
    let app = spawn_with(keys(A, &[])).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (endpoint, whsec) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), TEST_ONLY).await;
    let (_, first) = idempotent(&app, &ana, "old-format").await;

    // Make the database what kfactor before sealing v2 left: the untagged webhook secret
    // format, `v1.` idempotent responses, no key check.
    let db = &app.app.svc.db.write;
    let row = secret_rows(&app).await.remove(0);
    let key = SigningKey::parse(&whsec).unwrap();
    let v0 = legacy::seal_webhook_secret_v0(A.as_bytes(), row.id.as_bytes(), key.bytes());
    webhook_secrets::Entity::update_many()
        .col_expr(webhook_secrets::Column::Ciphertext, Expr::value(v0.clone()))
        .exec(db)
        .await
        .unwrap();
    let v1 = legacy::seal_idempotent_response_v1(A.as_bytes(), first.to_string().as_bytes());
    idempotency_keys::Entity::update_many()
        .col_expr(idempotency_keys::Column::Response, Expr::value(v1))
        .exec(db)
        .await
        .unwrap();
    settings::Entity::delete_by_id(sealing::KEY_CHECK_SETTING.to_string())
        .exec(db)
        .await
        .unwrap();
    app.kill();

    // The untagged format cannot say which secret sealed it: with a previous secret
    // configured, start-up stops and says what to do.
    let err = build_on(&app.db_url, keys(B, &[A]))
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("Start this version once with KFACTOR_SECRET set to"),
        "{err:#}"
    );

    let restarted = spawn_on(&app.db_url, keys(A, &[])).await;
    let row = secret_rows(&restarted).await.remove(0);
    assert!(
        row.ciphertext.starts_with("v2."),
        "converted: {}",
        row.ciphertext
    );
    let opened = Keyring::new(A.as_bytes().to_vec(), vec![])
        .open(Purpose::WebhookSecret, row.id.as_bytes(), &row.ciphertext)
        .unwrap();
    assert_eq!(opened.plaintext, key.bytes(), "the same signing key");
    delivery_verifies(&restarted, &ana, &rx, 1, &endpoint, &whsec).await;

    let (replayed, again) = idempotent(&restarted, &ana, "old-format").await;
    assert!(replayed, "a v1 response still replays");
    assert_eq!(again, first);
    let check = settings::Entity::find_by_id(sealing::KEY_CHECK_SETTING.to_string())
        .one(&restarted.app.svc.db.read)
        .await
        .unwrap();
    assert!(
        check.is_some_and(|c| c.value.starts_with("v2.")),
        "the key check is written"
    );
}

#[tokio::test]
async fn rotation_keeps_old_data_working_and_reseal_moves_everything() {
    let app = spawn_with(keys(A, &[])).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (old_ep, old_whsec) = create_endpoint(
        &app,
        &ana.token,
        Some(&ana.org_id),
        &rx.url("/old"),
        TEST_ONLY,
    )
    .await;
    let (_, first) = idempotent(&app, &ana, "rotation").await;
    let link = share(&app, &ana).await;
    app.kill();

    // KFACTOR_SECRET=B, KFACTOR_SECRET_PREVIOUS=A: what A sealed and derived still works.
    let rotated = spawn_on(&app.db_url, keys(B, &[A])).await;
    assert!(
        opens(&rotated, &link).await,
        "a link handed out under A still opens"
    );
    delivery_verifies(&rotated, &ana, &rx, 1, &old_ep, &old_whsec).await;
    let (replayed, again) = idempotent(&rotated, &ana, "rotation").await;
    assert!(replayed);
    assert_eq!(again, first);
    // New work uses B only.
    let (new_ep, new_whsec) = create_endpoint(
        &rotated,
        &ana.token,
        Some(&ana.org_id),
        &rx.url("/new"),
        TEST_ONLY,
    )
    .await;
    let only_b = Keyring::new(B.as_bytes().to_vec(), vec![]);
    let only_a = Keyring::new(A.as_bytes().to_vec(), vec![]);
    let rows = secret_rows(&rotated).await;
    let new_id = kfactor::domain::ids::WebhookEndpointId::parse(&new_ep).unwrap();
    let new_row = rows.iter().find(|r| r.endpoint_id == new_id).unwrap();
    let open_with = |k: &Keyring, r: &webhook_secrets::Model| {
        k.open(Purpose::WebhookSecret, r.id.as_bytes(), &r.ciphertext)
            .is_ok()
    };
    assert!(
        open_with(&only_b, new_row) && !open_with(&only_a, new_row),
        "sealed under B"
    );

    let svc = &rotated.app.svc;
    let report = sealing::reseal(&svc.db, &svc.keys).await.unwrap();
    let counts = |resealed, current| sealing::Counts {
        resealed,
        current,
        unreadable: 0,
    };
    assert_eq!(report.webhook_secrets, counts(1, 1));
    assert_eq!(report.idempotent_responses, counts(1, 0));
    assert_eq!(report.key_check, counts(1, 0));
    for r in secret_rows(&rotated).await {
        assert!(
            open_with(&only_b, &r) && !open_with(&only_a, &r),
            "every secret under B now"
        );
    }
    let again = sealing::reseal(&svc.db, &svc.keys).await.unwrap();
    assert_eq!(again.webhook_secrets, counts(0, 2), "nothing left to move");
    assert_eq!(again.idempotent_responses, counts(0, 1));
    assert_eq!(again.key_check, counts(0, 1));
    rotated.kill();

    // Without A at all: stored data opens (it was resealed); links derived under A are dead,
    // the links the API shows now are derived under B.
    let later = spawn_on(&app.db_url, keys(B, &[])).await;
    delivery_verifies(&later, &ana, &rx, 2, &old_ep, &old_whsec).await;
    delivery_verifies(&later, &ana, &rx, 3, &new_ep, &new_whsec).await;
    let (replayed, again) = idempotent(&later, &ana, "rotation").await;
    assert!(replayed);
    assert_eq!(again, first);
    assert!(!opens(&later, &link).await, "A's derived tokens end with A");
    let body = later
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { sharedLinks { nodes { url } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let url = body["data"]["organization"]["sharedLinks"]["nodes"][0]["url"]
        .as_str()
        .unwrap();
    let current = url.rsplit('/').next().unwrap();
    assert_ne!(current, link);
    assert!(opens(&later, current).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reseal_on_the_command_line_reports_counts() {
    let app = spawn_with(keys(A, &[])).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    create_endpoint(
        &app,
        &ana.token,
        Some(&ana.org_id),
        "http://127.0.0.1:9/x",
        TEST_ONLY,
    )
    .await;
    app.kill();
    let run = |args: &[&str], current: &str, previous: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_kfactor"))
            .env_remove("KFACTOR_BIND")
            .env("KFACTOR_LOG", "warn")
            .env("KFACTOR_DATABASE_URL", &app.db_url)
            .env("KFACTOR_SECRET", current)
            .env("KFACTOR_SECRET_PREVIOUS", previous)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, _, stderr) = run(&["migrate"], B, "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to start") && !stderr.contains(A) && !stderr.contains(B),
        "{stderr}"
    );

    // Comma-separated previous secrets, one of them the right one.
    let previous = format!("{}, {A}", "x".repeat(40));
    let (code, stdout, stderr) = run(&["secrets", "reseal"], B, &previous);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("webhook signing secrets: 1 resealed, 0 already current, 0 unreadable"),
        "{stdout}"
    );
    assert!(stdout.contains("key check: 1 resealed"), "{stdout}");
    assert!(
        !stdout.contains(A) && !stderr.contains(A),
        "secrets are never printed"
    );

    let (code, _, stderr) = run(&["migrate"], B, "");
    assert_eq!(code, Some(0), "everything is under B now: {stderr}");
}

#[tokio::test]
async fn a_secret_altered_under_a_running_server_is_an_error_not_a_key() {
    let app = spawn_with(keys(A, &[])).await;
    let rx = Receiver::start().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let (endpoint, _) =
        create_endpoint(&app, &ana.token, Some(&ana.org_id), &rx.url("/"), TEST_ONLY).await;
    // Sealed under B behind the server's back: the dispatcher must not sign with garbage.
    let row = secret_rows(&app).await.remove(0);
    let foreign = Keyring::new(B.as_bytes().to_vec(), vec![]).seal(
        Purpose::WebhookSecret,
        row.id.as_bytes(),
        b"0123456789abcdef0123456789abcdef",
    );
    webhook_secrets::Entity::update_many()
        .col_expr(webhook_secrets::Column::Ciphertext, Expr::value(foreign))
        .filter(webhook_secrets::Column::Id.eq(row.id))
        .exec(&app.app.svc.db.write)
        .await
        .unwrap();
    let svc = &app.app.svc;
    let id = kfactor::domain::ids::WebhookEndpointId::parse(&endpoint).unwrap();
    let err = kfactor::domain::webhooks::signing_keys(svc, &svc.db.read, [id], app.clock_now())
        .await
        .expect_err("a secret that does not open is an error");
    assert!(format!("{err:?}").contains("does not open"), "{err:?}");
}
