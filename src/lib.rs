//! kfactor: the growth backend of a product-led SaaS, behind one GraphQL API.
//!
//! [`App::build`] connects to the database, migrates it and assembles the services;
//! [`App::router`] is the axum router; [`serve`] runs it until shutdown.
#![warn(missing_docs)]
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub mod alloc;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod digest;
pub mod domain;
pub mod egress;
pub mod events;
pub mod graphql;
pub mod http;
pub mod mailer;
pub mod metric_names;
pub mod notifier;
pub mod outbox;
pub mod precompute;
pub mod pubsub;
pub mod retention;
pub mod rollups;
pub mod seed;
pub mod visits;
pub mod webhooks;

use clock::Clock;
use config::Config;
use domain::{plans::Catalog, Services};

/// A ready-to-serve kfactor: services, schema and metrics.
#[derive(Clone)]
pub struct App {
    /// Domain services.
    pub svc: Arc<Services>,
    /// The GraphQL schema.
    pub schema: graphql::KfSchema,
    /// Open WebSocket connections (shared by every router of this app).
    pub sockets: http::ws::Sockets,
    /// Automatic Persisted Queries seen by this app.
    pub persisted: Arc<http::PersistedQueries>,
}

impl App {
    /// Connects, migrates, loads the secret and the plan catalog.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let plans = Arc::new(load_catalog(&config)?);
        let db = db::Db::connect(&config)
            .await
            .context("connecting to the database")?;
        db.migrate().await.context("running migrations")?;
        let (keys, generated) = domain::tokens::load_or_create_secret(
            &db.write,
            config.secret.clone().map(|s| s.0),
            config.secret_previous.iter().map(|s| s.0.clone()).collect(),
        )
        .await
        .context("loading the server secret")?;
        if generated {
            tracing::warn!(
                "KFACTOR_SECRET is not set: using a secret generated once and stored in the \
                 database. Fine for development; set KFACTOR_SECRET in production."
            );
        }
        // Data sealed under a secret that is not configured is refused here, before anything
        // could sign with a wrong key; formats of older versions are converted.
        domain::sealing::check_at_start(&db, &keys, clock.now()).await?;
        let is_sqlite = db.backend() == sea_orm::DatabaseBackend::Sqlite;
        let bus = db::bus::Bus::new(config.realtime.ws_subscriber_backlog).with_presence(
            db::bus::presence::Settings {
                timeout: config.realtime.presence_timeout,
                max_viewers: config.realtime.presence_max_viewers,
            },
            clock.clone(),
        );
        // Other instances write a PostgreSQL database too: caches wait for the listener.
        let bus = match is_sqlite {
            true => bus,
            false => bus.shared_with_other_instances(),
        };
        // The visits worker runs from the start (share links are answered without the other
        // workers); the rules hold only the queue's sending side.
        let (visits, inbox) = outbox::visits::VisitQueue::new(visits::QUEUE_CAPACITY);
        visits::spawn(db.clone(), bus.clone(), inbox);
        let hasher = domain::passwords::Hasher::new(
            config.safety.password_hashers,
            config.safety.password_hash_max_wait,
        );
        let limiter = domain::ratelimit::Limiter::new(&db, &keys);
        let link_cache = domain::sharing::LinkCache::new(config.operations.link_cache_bytes);
        let svc = Arc::new(Services {
            db,
            clock,
            config: Arc::new(config),
            keys,
            bus,
            plans,
            visits,
            link_cache,
            api_key_usage: Default::default(),
            hasher,
            limiter,
            benchmarks: Default::default(),
        });
        let schema = graphql::schema(svc.clone());
        Ok(App {
            svc,
            schema,
            sockets: Default::default(),
            persisted: Default::default(),
        })
    }

    /// Starts the background workers: the mailer, the webhook dispatcher, the digest
    /// scheduler, the purger, the retention task and, on
    /// PostgreSQL, the listener for other instances' announcements.
    pub fn spawn_workers(&self) -> anyhow::Result<Workers> {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let svc = &self.svc;
        let listener = (svc.db.backend() == sea_orm::DatabaseBackend::Postgres).then(|| {
            tokio::spawn(pubsub::listen(
                svc.bus.clone(),
                svc.config.database_url.clone(),
                svc.db.read.clone(),
            ))
        });
        let presence_relay = (svc.db.backend() == sea_orm::DatabaseBackend::Postgres)
            .then(|| tokio::spawn(pubsub::relay_presence(svc.bus.clone(), svc.db.read.clone())));
        let purger = {
            let (svc, mut stop) = (svc.clone(), stopping.clone());
            // Organizations whose deletion grace period ended are purged every minute.
            tokio::spawn(async move {
                while !*stop.borrow() {
                    if let Err(e) = domain::deletion::purge_due(&svc).await {
                        tracing::error!(error = ?e, "purging deleted organizations failed");
                    }
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                    }
                }
            })
        };
        let digest = tokio::spawn(digest::run(svc.clone(), stopping.clone()));
        let notifier = tokio::spawn(notifier::run(svc.clone(), stopping.clone()));
        let benchmarks = tokio::spawn(precompute::run(svc.clone(), stopping.clone()));
        Ok(Workers {
            benchmarks,
            digest,
            notifier,
            purger,
            retention: retention::spawn(svc.clone(), stopping.clone()),
            mailer: mailer::spawn(svc.clone(), stopping.clone())?,
            webhooks: webhooks::spawn(svc.clone(), stopping)?,
            listener,
            presence_relay,
            stop,
        })
    }

    fn state(&self) -> http::AppState {
        http::AppState {
            svc: self.svc.clone(),
            schema: self.schema.clone(),
            metrics: metrics_handle(),
            sockets: self.sockets.clone(),
            persisted: self.persisted.clone(),
        }
    }

    /// The HTTP router (without `/metrics` when `KFACTOR_METRICS_BIND` gives it an address of
    /// its own).
    pub fn router(&self) -> axum::Router {
        http::router(self.state())
    }

    /// `/metrics` alone, as served on `KFACTOR_METRICS_BIND`.
    pub fn metrics_router(&self) -> axum::Router {
        http::metrics_router(self.state())
    }
}

/// The background workers of an app.
pub struct Workers {
    mailer: tokio::task::JoinHandle<()>,
    /// Purges organizations after their deletion grace period.
    purger: tokio::task::JoinHandle<()>,
    /// Writes the weekly digest when it is due.
    digest: tokio::task::JoinHandle<()>,
    /// Batches notification emails.
    notifier: tokio::task::JoinHandle<()>,
    /// Keeps the dashboard's benchmark windows computed ahead.
    benchmarks: tokio::task::JoinHandle<()>,
    /// Deletes operational rows past their retention.
    retention: tokio::task::JoinHandle<()>,
    webhooks: tokio::task::JoinHandle<()>,
    /// PostgreSQL: republishes what other instances committed.
    listener: Option<tokio::task::JoinHandle<()>>,
    /// PostgreSQL: tells the other instances of this one's presence changes.
    presence_relay: Option<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Workers {
    /// Stops every worker where it stands, as a crash would (tests of recovery use this).
    pub fn abort(&self) {
        self.mailer.abort();
        self.purger.abort();
        self.digest.abort();
        self.notifier.abort();
        self.benchmarks.abort();
        self.retention.abort();
        self.webhooks.abort();
        if let Some(l) = &self.listener {
            l.abort();
        }
        if let Some(r) = &self.presence_relay {
            r.abort();
        }
    }

    /// Whether the webhook dispatcher and the mailer have ended (after [`Workers::shutdown`]):
    /// then nothing of this instance sends anything any more.
    pub fn finished(&self) -> bool {
        self.webhooks.is_finished() && self.mailer.is_finished()
    }

    /// Stops gracefully (SIGTERM): webhook attempts and emails in flight finish, within
    /// their timeouts, and are recorded, so a restart or deploy sends none of them again.
    pub async fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(l) = &self.listener {
            l.abort();
        }
        if let Some(r) = &self.presence_relay {
            r.abort();
        }
        self.purger.abort();
        // Each pruning statement is its own transaction: stopping between two loses nothing.
        self.retention.abort();
        // A digest run in progress stops at a transaction boundary: whatever committed is
        // complete, the next run finishes the rest.
        self.digest.abort();
        // Each batch is one transaction: stopping between two loses nothing.
        self.notifier.abort();
        self.benchmarks.abort();
        let grace = webhooks::dispatcher::TIMEOUT + std::time::Duration::from_secs(5);
        let stopped = async {
            let _ = (&mut self.webhooks).await;
            let _ = (&mut self.mailer).await;
        };
        if tokio::time::timeout(grace, stopped).await.is_err() {
            tracing::warn!("background workers did not stop in time; aborting them");
            self.abort();
        }
    }
}

/// Loads the configured plan catalog, or the embedded one.
pub fn load_catalog(config: &Config) -> anyhow::Result<Catalog> {
    match &config.plans {
        None => Catalog::parse(domain::plans::DEFAULT_CATALOG)
            .map_err(|e| anyhow::anyhow!("embedded plans.toml: {e}")),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("KFACTOR_PLANS: cannot read {}", path.display()))?;
            Catalog::parse(&text)
                .map_err(|e| anyhow::anyhow!("KFACTOR_PLANS {}: {e}", path.display()))
        }
    }
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .expect("installing the Prometheus recorder");
            metric_names::register_all();
            // Histogram samples pile up between drains; a scrape drains them, but nothing
            // says anyone scrapes, so they are drained here every few seconds (what the
            // exporter's own `install` does), keeping the recorder's memory bounded.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("starting the metrics upkeep thread");
            handle
        })
        .clone()
}

/// Serves `app` on `listener` until `shutdown` resolves, and `/metrics` on
/// `KFACTOR_METRICS_BIND` when that is set.
pub async fn serve(
    app: &App,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = match app.svc.config.operations.metrics_bind {
        None => None,
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("KFACTOR_METRICS_BIND {addr}: {e}"))
            })?;
            tracing::info!(%addr, "metrics listening");
            let router = app.metrics_router();
            Some(tokio::spawn(async move { axum::serve(l, router).await }))
        }
    };
    let give_back = tokio::spawn(http::ws::memory::give_back(app.sockets.clone()));
    // The peer address is the client's (or its proxy's): rate limits and sessions need it.
    let served = axum::serve(
        listener,
        app.router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Some(m) = metrics {
        m.abort();
    }
    give_back.abort();
    served
}
