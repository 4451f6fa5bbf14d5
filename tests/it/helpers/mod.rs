//! Test harness: every test gets its own database (a temp SQLite file, or a fresh PostgreSQL
//! database when TEST_DATABASE_URL is set) and its own server on 127.0.0.1:0.
#![allow(dead_code)]
pub mod browser;
pub mod receiver;
pub mod smtp;
pub mod stripe;
pub mod ws;
use entity::ids::MembershipId;
use std::{net::SocketAddr, sync::Arc};

use kfactor::{clock::ManualClock, config::Config, App};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database};
use serde_json::{json, Value};
use uuid::Uuid;

/// A running server with its own database and a clock the test controls.
pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub app: App,
    pub db_url: String,
    pub workers: kfactor::Workers,
    server: tokio::task::JoinHandle<()>,
    _db: Option<TestDb>,
}

pub enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; a fresh thread gets a runtime of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(db) = Database::connect(&admin_url).await {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// The database URL for a new test, and the guard that removes it.
pub async fn fresh_database() -> (String, TestDb) {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin_url) => {
            let name = format!("kf_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url)
                .await
                .expect("connect TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin_url);
            (
                format!("{base}/{name}"),
                TestDb::Postgres { admin_url, name },
            )
        }
        None => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("kfactor.db").display()
            );
            (url, TestDb::Sqlite(dir))
        }
    }
}

/// Whether this run is on PostgreSQL (`TEST_DATABASE_URL` set).
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

/// The first line of a PostgreSQL-only test. Such tests carry
/// `#[ignore = "PostgreSQL only: …"]`, so a SQLite run lists them as ignored rather than
/// passed; the PostgreSQL run includes them with `-- --include-ignored`. Included without
/// PostgreSQL, they fail here instead of passing.
pub fn require_postgres() {
    assert!(
        on_postgres(),
        "this test needs PostgreSQL: TEST_DATABASE_URL=postgres://… cargo test -- --include-ignored"
    );
}

/// Starts a server with default configuration.
pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts a server after `tweak` adjusted its configuration.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (db_url, guard) = fresh_database().await;
    start(db_url, Some(guard), tweak).await
}

/// Starts another server on the database of an existing one (a restart, or a second
/// instance); the first keeps ownership of the database.
pub async fn spawn_on(db_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    start(db_url.to_string(), None, tweak).await
}

/// Builds (connects, migrates, runs the start-up checks of) an app on an existing database
/// without serving it: for start-up refusals.
pub async fn build_on(db_url: &str, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<App> {
    let mut config = Config::for_database(db_url);
    tweak(&mut config);
    App::build(config, Arc::new(ManualClock::default())).await
}

async fn start(db_url: String, guard: Option<TestDb>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    // TEST_LOG=debug shows the server's logs of a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
    let mut config = Config::for_database(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    // The digest scheduler would write the platform's digest of the wall clock's last week
    // at start (a growth.weekly message); the tests that want it turn it on.
    config.digest_schedule = None;
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.public_url = format!("http://{addr}");
    let clock = ManualClock::default();
    let app = App::build(config, Arc::new(clock.clone()))
        .await
        .expect("build app");
    let workers = app.spawn_workers().expect("start workers");
    let served = app.clone();
    let server = tokio::spawn(async move {
        kfactor::serve(&served, listener, std::future::pending())
            .await
            .unwrap();
    });
    TestApp {
        addr,
        url: format!("http://{addr}"),
        http: reqwest::Client::new(),
        clock,
        app,
        db_url,
        workers,
        server,
        _db: guard,
    }
}

impl TestApp {
    /// Stops the server and its workers where they stand, like `kill -9`.
    pub fn kill(&self) {
        self.workers.abort();
        self.server.abort();
    }

    /// Moves the clock forward and wakes the webhook dispatcher (instead of waiting for its
    /// next poll).
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.app.svc.bus.wake_webhooks();
        // Live streams wait for expiries on the real clock: the jump passed them.
        self.app.svc.bus.recheck_all();
    }
}

/// A signed-up user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub token: String,
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: String,
}

impl TestApp {
    /// POSTs a GraphQL request and returns the raw response (headers, status, body).
    pub async fn send(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// POSTs a GraphQL request and returns (status, body).
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let resp = self.send(token, query, variables).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json body"))
    }

    /// POSTs a GraphQL request that must succeed at the HTTP level; returns the body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(token, query, variables).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Signs up a user (organic) and returns their token, id and workspace id.
    pub async fn sign_up(&self, name: &str, email: &str) -> TestUser {
        let body = self
            .gql(
                None,
                "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } organization { id } userErrors { code message } } }",
                json!({ "i": { "name": name, "email": email, "password": "correct horse battery" } }),
            )
            .await;
        let p = &body["data"]["signUp"];
        assert_eq!(p["userErrors"], json!([]), "{body}");
        TestUser {
            token: p["token"].as_str().unwrap().to_string(),
            id: p["user"]["id"].as_str().unwrap().to_string(),
            org_id: p["organization"]["id"].as_str().unwrap().to_string(),
            email: email.to_lowercase(),
            name: name.to_string(),
        }
    }

    /// Adds `user` to `org` with `role` directly in the database (invitations are the API way).
    pub async fn add_member(&self, org_id: &str, user_id: &str, role: &str) {
        let org = kfactor::domain::ids::OrgId::parse(org_id).unwrap();
        let user = kfactor::domain::ids::UserId::parse(user_id).unwrap();
        entity::memberships::ActiveModel {
            id: Set(MembershipId::generate()),
            organization_id: Set(org),
            user_id: Set(user),
            role: Set(
                <entity::enums::Role as sea_orm::ActiveEnum>::try_from_value(&role.to_lowercase())
                    .expect("a stored role name"),
            ),
            joined_at: Set(self.clock_now()),
        }
        .insert(&self.app.svc.db.write)
        .await
        .expect("insert membership");
    }

    /// Turns a plan feature on for an organization (a staff override written directly, so
    /// no activity or webhook message is produced).
    pub async fn enable_feature(&self, org_id: &str, feature: &str) {
        use sea_orm::EntityTrait;
        let org = kfactor::domain::ids::OrgId::parse(org_id).unwrap();
        entity::entitlement_overrides::Entity::insert(entity::entitlement_overrides::ActiveModel {
            organization_id: Set(org),
            feature: Set(feature.to_string()),
            limit_value: Set(None),
            unlimited: Set(false),
            enabled: Set(Some(true)),
            expires_at: Set(None),
            created_at: Set(self.clock_now()),
        })
        // Enabling twice is fine; any other failure is the test's.
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                entity::entitlement_overrides::Column::OrganizationId,
                entity::entitlement_overrides::Column::Feature,
            ])
            .update_columns([
                entity::entitlement_overrides::Column::Enabled,
                entity::entitlement_overrides::Column::ExpiresAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&self.app.svc.db.write)
        .await
        .expect("insert entitlement override");
    }

    /// A server-to-server API key with `scopes` (as `kfactor api-keys create` makes one).
    pub async fn api_key(&self, name: &str, scopes: &[&str]) -> String {
        let scopes: Vec<_> = scopes
            .iter()
            .map(|s| kfactor::domain::access::Scope::parse(s).unwrap())
            .collect();
        kfactor::domain::api_keys::create(&self.app.svc, name, &scopes)
            .await
            .expect("create API key")
            .1
    }

    /// Changes a plan as the billing system does: with an API key holding `plans:write`
    /// (owners may not; they go through checkout). Returns the `changePlan` payload.
    pub async fn change_plan(&self, org_id: &str, plan: &str) -> Value {
        let key = self.api_key("billing", &["plans:write"]).await;
        let body = self
            .gql(
                Some(&key),
                "mutation($o: ID!, $p: String!) { changePlan(organizationId: $o, plan: $p) { organization { plan { key } } previousPlan { key } userErrors { code message } } }",
                json!({ "o": org_id, "p": plan }),
            )
            .await;
        let p = body["data"]["changePlan"].clone();
        assert_eq!(p["userErrors"], json!([]), "{body}");
        p
    }

    /// POSTs a page form as a browser that loaded the form would: with the CSRF cookie and
    /// the matching hidden field. `cookies` are further `name=value` pairs to send.
    pub async fn form_post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        cookies: &[&str],
    ) -> reqwest::Response {
        let (cookie, token) = self.csrf();
        let mut all = vec![cookie];
        all.extend(cookies.iter().map(|c| c.to_string()));
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &token));
        self.http
            .post(format!("{}{path}", self.url))
            .header("cookie", all.join("; "))
            .form(&form)
            .send()
            .await
            .expect("form request")
    }

    /// A CSRF cookie (`kf_csrf=…`) and the form value that goes with it.
    pub fn csrf(&self) -> (String, String) {
        let value = "test-csrf-cookie-0123456789abcdef";
        (
            format!("{}={value}", kfactor::http::browser::CSRF_COOKIE),
            self.app.svc.keys.csrf_token(value),
        )
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use kfactor::clock::Clock;
        self.clock.now()
    }
}

/// The `extensions.code` of every top-level error.
pub fn error_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The codes of a payload's userErrors.
pub fn user_error_codes(payload: &Value) -> Vec<String> {
    payload["userErrors"]
        .as_array()
        .expect("userErrors")
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_string())
        .collect()
}
