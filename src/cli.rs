//! Command line: `kfactor [serve|migrate|schema|seed-demo|metrics verify|metrics rebuild|
//! staff grant EMAIL|staff revoke EMAIL|plans check|api-keys create|list|revoke|
//! secrets reseal]`.
use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};

use crate::{clock::SystemClock, config::Config, domain::plans::Catalog, App};

/// kfactor: growth backend for product-led SaaS.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file (default: kfactor.toml if it exists; KFACTOR_* environment
    /// variables override it).
    #[arg(long, global = true, env = "KFACTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run pending migrations, then serve HTTP (the default).
    Serve,
    /// Run pending migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Platform staff.
    Staff {
        /// grant or revoke.
        #[command(subcommand)]
        action: StaffAction,
    },
    /// Fill an empty database with a realistic, deterministic demo dataset.
    SeedDemo {
        /// Users in all.
        #[arg(long, default_value_t = 3000)]
        users: usize,
        /// Weeks of history, ending today.
        #[arg(long, default_value_t = 12)]
        weeks: u32,
        /// Random seed: the same seed makes the same dataset.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The growth rollups.
    Metrics {
        /// verify or rebuild.
        #[command(subcommand)]
        action: MetricsAction,
    },
    /// Writes the weekly growth digest now (the server's scheduler does this by itself);
    /// weeks already digested are skipped, so it is safe to run at any time.
    Digest {
        /// Monday (`YYYY-MM-DD`) of the week to digest; default: the week that is due.
        #[arg(long)]
        week: Option<String>,
    },
    /// The plan catalog.
    Plans {
        /// check.
        #[command(subcommand)]
        action: PlansAction,
    },
    /// What is stored sealed under the server secret.
    Secrets {
        /// reseal.
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Server-to-server API keys.
    ApiKeys {
        /// create, list or revoke.
        #[command(subcommand)]
        action: ApiKeyAction,
    },
}

/// Server secret commands.
#[derive(Subcommand, Debug)]
pub enum SecretsAction {
    /// Seal everything stored under a previous secret (KFACTOR_SECRET_PREVIOUS) or an older
    /// format again under KFACTOR_SECRET, and print the counts.
    Reseal,
}

/// API key commands.
#[derive(Subcommand, Debug)]
pub enum ApiKeyAction {
    /// Create a key and print it (shown this once; only its hash is stored).
    Create {
        /// What the key is for, e.g. "billing".
        #[arg(long)]
        name: String,
        /// A scope: plans:write, growth:read or webhooks:write. Repeat (or separate with
        /// commas) for several; a key without scopes can do nothing.
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// List every key with its scopes and last use.
    List,
    /// Revoke a key (by its id, `key_…`); it stops working at once.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// Staff flag changes.
#[derive(Subcommand, Debug)]
pub enum StaffAction {
    /// Make a user platform staff.
    Grant {
        /// The user's email.
        email: String,
    },
    /// Remove a user's staff flag.
    Revoke {
        /// The user's email.
        email: String,
    },
}

/// Growth rollup commands.
#[derive(Subcommand, Debug)]
pub enum MetricsAction {
    /// Recompute every rollup from the facts and compare; exits 1 on any difference.
    Verify,
    /// Replace every rollup with what the facts say (after a bulk import).
    Rebuild,
}

/// Catalog commands.
#[derive(Subcommand, Debug)]
pub enum PlansAction {
    /// Validate a catalog (default: KFACTOR_PLANS, else the embedded one).
    Check {
        /// Path of the catalog to check.
        path: Option<PathBuf>,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Schema = command {
        print!("{}", crate::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let loaded = match &cli.config {
        Some(path) => Config::load_from(path, true),
        None => Config::load(std::path::Path::new("kfactor.toml")),
    };
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kfactor: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // The plan catalog is configuration too: a broken KFACTOR_PLANS file is refused like
    // any other setting (`plans check` reports on it instead).
    if !matches!(command, Command::Plans { .. }) {
        if let Err(e) = crate::load_catalog(&config) {
            eprintln!("kfactor: invalid configuration: {e:#}");
            return ExitCode::from(2);
        }
    }
    // The server logs to stdout; one-off commands to stderr, so their output stays theirs.
    init_tracing(&config.log, matches!(command, Command::Serve));
    let result = match command {
        Command::Plans {
            action: PlansAction::Check { path },
        } => check_plans(path.or(config.plans.clone())),
        Command::Serve => serve(config).await,
        Command::Migrate => App::build(config, Arc::new(SystemClock)).await.map(|_| {
            println!("migrations are up to date");
        }),
        Command::Staff { action } => staff(config, action).await,
        Command::Metrics { action } => metrics(config, action).await,
        Command::SeedDemo { users, weeks, seed } => {
            seed_demo(config, crate::seed::Options { users, weeks, seed }).await
        }
        Command::ApiKeys { action } => api_keys(config, action).await,
        Command::Secrets {
            action: SecretsAction::Reseal,
        } => reseal(config).await,
        Command::Digest { week } => digest(config, week).await,
        Command::Schema => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kfactor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_plans(path: Option<PathBuf>) -> anyhow::Result<()> {
    let (name, text) = match &path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        ),
        None => (
            "embedded plans.toml".into(),
            crate::domain::plans::DEFAULT_CATALOG.into(),
        ),
    };
    match Catalog::parse(&text) {
        Ok(c) => {
            let plans: Vec<_> = c.plans.iter().map(|p| p.key.as_str()).collect();
            println!(
                "{name}: ok ({} plans: {}; {} features)",
                plans.len(),
                plans.join(", "),
                c.features.len()
            );
            Ok(())
        }
        Err(e) => anyhow::bail!("{name}: {e}"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let public = config.public_url.clone();
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let mut workers = app.spawn_workers()?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("KFACTOR_BIND {bind}: {e}"))?;
    tracing::info!(%bind, "kfactor listening; GraphiQL at {public}/graphql");
    println!("kfactor is serving GraphiQL at {public}/graphql");
    crate::serve(&app, listener, shutdown_signal()).await?;
    tracing::info!("HTTP stopped; finishing background work");
    workers.shutdown().await;
    Ok(())
}

async fn staff(config: Config, action: StaffAction) -> anyhow::Result<()> {
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let (email, grant) = match &action {
        StaffAction::Grant { email } => (email, true),
        StaffAction::Revoke { email } => (email, false),
    };
    match crate::domain::identity::set_staff(&app.svc, email, grant).await {
        Ok(true) => {
            println!(
                "{email}: staff {}",
                if grant { "granted" } else { "revoked" }
            );
            Ok(())
        }
        Ok(false) => anyhow::bail!("no user with email {email}"),
        Err(e) => anyhow::bail!("{e}"),
    }
}

async fn digest(config: Config, week: Option<String>) -> anyhow::Result<()> {
    use crate::domain::digest;
    use chrono::Datelike;
    let schedule = config.digest_schedule.unwrap_or(
        crate::config::DigestSchedule::parse(crate::config::DigestSchedule::DEFAULT)
            .map_err(anyhow::Error::msg)?
            .expect("the default schedule is on"),
    );
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let week = match week {
        Some(w) => {
            let d = chrono::NaiveDate::parse_from_str(w.trim(), "%Y-%m-%d")
                .map_err(|_| anyhow::anyhow!("--week: {w:?} is not a date like 2026-11-23"))?;
            if d.weekday() != chrono::Weekday::Mon {
                anyhow::bail!("--week: {d} is a {}, not a Monday", d.weekday());
            }
            d
        }
        None => digest::due_week(schedule, app.svc.now()),
    };
    let started = std::time::Instant::now();
    let r = digest::run(&app.svc, week)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if r.already_done {
        println!("the week of {week} was digested before; nothing to do");
    } else {
        println!(
            "digested the week of {week}: {} digests, {} emails queued ({:.1} s)",
            r.digests,
            r.emails,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn metrics(config: Config, action: MetricsAction) -> anyhow::Result<()> {
    use crate::domain::metrics::rebuild;
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let started = std::time::Instant::now();
    match action {
        MetricsAction::Verify => {
            let diffs = rebuild::verify(&app.svc)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if diffs.is_empty() {
                println!(
                    "growth rollups equal a recomputation from the facts ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            for d in diffs.iter().take(50) {
                println!("{d}");
            }
            anyhow::bail!(
                "{} rollup rows differ from the facts; `kfactor metrics rebuild` replaces them",
                diffs.len()
            )
        }
        MetricsAction::Rebuild => {
            rebuild::rebuild(&app.svc)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "growth rollups rebuilt from the facts ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

async fn seed_demo(config: Config, opts: crate::seed::Options) -> anyhow::Result<()> {
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let r = crate::seed::run(&app.svc, opts).await?;
    println!(
        "seeded {} users over {} weeks (seed {}) in {:.1} s:",
        opts.users, opts.weeks, opts.seed, r.seconds
    );
    for (table, rows) in &r.tables {
        println!("  {table:<18} {rows:>10}");
    }
    println!(
        "  largest organization: {} ({} members)",
        r.largest.0, r.largest.1
    );
    println!(
        "log in as platform staff: {} / {}",
        r.staff_email,
        crate::seed::PASSWORD
    );
    println!("every demo user's password is {}", crate::seed::PASSWORD);
    Ok(())
}

async fn reseal(config: Config) -> anyhow::Result<()> {
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let svc = &app.svc;
    let r = crate::domain::sealing::reseal(&svc.db, &svc.keys).await?;
    for (what, c) in [
        ("webhook signing secrets", r.webhook_secrets),
        ("idempotent responses", r.idempotent_responses),
        ("key check", r.key_check),
    ] {
        println!(
            "{what}: {} resealed, {} already current, {} unreadable",
            c.resealed, c.current, c.unreadable
        );
    }
    eprintln!(
        "Links handed out before (shared links, invitations, email links) are derived, not \
         stored: they keep working only while their secret stays in KFACTOR_SECRET_PREVIOUS."
    );
    let unreadable =
        r.webhook_secrets.unreadable + r.idempotent_responses.unreadable + r.key_check.unreadable;
    if unreadable > 0 {
        anyhow::bail!("{unreadable} sealed value(s) open with no configured secret; they were left as they are");
    }
    Ok(())
}

async fn api_keys(config: Config, action: ApiKeyAction) -> anyhow::Result<()> {
    use crate::domain::{
        access::Scope,
        api_keys::{self, scopes_of},
        ids::ApiKeyId,
    };
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let svc = &app.svc;
    let names = |k: &entity::api_keys::Model| {
        let s: Vec<&str> = scopes_of(k).into_iter().map(Scope::as_str).collect();
        if s.is_empty() {
            "(no scopes)".to_string()
        } else {
            s.join(",")
        }
    };
    match action {
        ApiKeyAction::Create { name, scopes } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let (key, token) = api_keys::create(svc, &name, &scopes)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // The key alone on stdout, so `KEY=$(kfactor api-keys create …)` captures it.
            eprintln!(
                "created {} \"{}\" with scopes {}; store the key now, it is not shown again:",
                key.id,
                key.name,
                names(&key)
            );
            println!("{token}");
        }
        ApiKeyAction::List => {
            let keys = api_keys::list(&svc.db.read)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if keys.is_empty() {
                eprintln!("no API keys");
            }
            let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or("never".to_string(), |t| {
                    t.format("%Y-%m-%d %H:%M").to_string()
                })
            };
            for k in keys {
                println!(
                    "{}  {:<20}  {:<40}  created {}  last used {}{}",
                    k.id,
                    k.name,
                    names(&k),
                    time(Some(k.created_at)),
                    time(k.last_used_at),
                    k.revoked_at
                        .map_or(String::new(), |t| format!("  REVOKED {}", time(Some(t))))
                );
            }
        }
        ApiKeyAction::Revoke { id } => {
            let id = ApiKeyId::parse(id.trim()).map_err(|_| anyhow::anyhow!("no API key {id}"))?;
            let key = match api_keys::revoke(svc, id).await {
                Ok(k) => k,
                Err(crate::domain::DomainError::NotFound(_)) => anyhow::bail!("no API key {id}"),
                Err(e) => anyhow::bail!("{e}"),
            };
            println!("{id} \"{}\" revoked", key.name);
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

fn init_tracing(filter: &str, to_stdout: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let (writer, terminal) = if to_stdout {
        (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        )
    } else {
        (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        )
    };
    let filter = tracing_subscriber::EnvFilter::new(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if terminal {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    };
}
