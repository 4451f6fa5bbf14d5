//! Growth metrics latency on a large demo dataset: seeds a fresh database with
//! `kfactor seed-demo`, serves it with `kfactor serve`, and calls `growth` for a 12-week window
//! with a WEEK series (every field selected) over HTTP, for platform scope and for the largest
//! organization, RUNS times each. Prints one machine-readable line per phase. Run through
//! `bench/metrics`.
//!
//! Usage: metrics_bench KFACTOR_BIN DATABASE_URL [--users N] [--weeks W] [--runs R] [--reuse]
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

const GROWTH_FIELDS: &str = "from to signups signupsBySource { source signups } cohortSize
  invitationsSent invitationsPerUser invitationConversionRate viralCoefficient shareCoefficient
  amplification inviteFunnel { sent opened accepted activated }
  shareFunnel { linksCreated visits uniqueVisitors signups conversionRate }
  topInviters(limit: 10) { user { id name } invitationsSent accepted }
  surfaces { surface invitationsSent sharesCreated viralSignups }
  series { periodStart signups signupsBySource { source signups } viralSignups invitationsSent invitationsAccepted viralCoefficient }
  medianViralCycleHours complete upgrade { feature }";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bin = args.get(1).expect("KFACTOR_BIN").clone();
    let db = args.get(2).expect("DATABASE_URL").clone();
    let users: usize = arg(&args, "--users").map_or(1_000_000, |v| v.parse().unwrap());
    let weeks: u32 = arg(&args, "--weeks").map_or(26, |v| v.parse().unwrap());
    let runs: usize = arg(&args, "--runs").map_or(20, |v| v.parse().unwrap());
    let reuse = args.iter().any(|a| a == "--reuse");
    let backend = if db.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };

    if !reuse {
        let started = Instant::now();
        let out = Command::new(&bin)
            .args([
                "seed-demo",
                "--users",
                &users.to_string(),
                "--weeks",
                &weeks.to_string(),
            ])
            .env("KFACTOR_DATABASE_URL", &db)
            .env("KFACTOR_LOG", "warn")
            .stderr(Stdio::inherit())
            .output()?;
        anyhow::ensure!(out.status.success(), "seed-demo failed");
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
        println!(
            "metrics backend={backend} phase=seed users={users} weeks={weeks} seconds={:.1}",
            started.elapsed().as_secs_f64()
        );
    }
    let size = db_size(&db).await?;
    println!(
        "metrics backend={backend} phase=size users={users} bytes={size} mib={:.0}",
        size as f64 / 1048576.0
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let _server = Server(
        Command::new(&bin)
            .arg("serve")
            .env("KFACTOR_DATABASE_URL", &db)
            .env("KFACTOR_BIND", format!("127.0.0.1:{port}"))
            .env("KFACTOR_LOG", "warn")
            .env("KFACTOR_GRAPHQL_MAX_COMPLEXITY", "100000")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gql = |token: Option<String>, query: String, vars: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let mut req = http
                .post(format!("{base}/graphql"))
                .json(&json!({ "query": query, "variables": vars }));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let body: Value = req.send().await?.json().await?;
            anyhow::ensure!(body.get("errors").is_none(), "{body}");
            Ok::<Value, anyhow::Error>(body)
        }
    };
    let login = gql(
        None,
        "mutation { logIn(input: {email: \"user0@demo.kfactor.test\", password: \"demo-password\"}) { token user { memberships { organization { id name } } } } }".into(),
        json!({}),
    )
    .await?;
    let token = login["data"]["logIn"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let org = login["data"]["logIn"]["user"]["memberships"][0]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let to = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let from = to - chrono::Duration::weeks(12);
    for (scope, query, vars) in [
        (
            "platform",
            format!("query($f: DateTime!, $t: DateTime!) {{ growth(from: $f, to: $t, interval: WEEK) {{ {GROWTH_FIELDS} }} }}"),
            json!({ "f": from, "t": to }),
        ),
        (
            "organization",
            format!("query($o: ID!, $f: DateTime!, $t: DateTime!) {{ organization(id: $o) {{ growth(from: $f, to: $t, interval: WEEK) {{ {GROWTH_FIELDS} }} }} }}"),
            json!({ "o": org, "f": from, "t": to }),
        ),
    ] {
        let mut ms = Vec::with_capacity(runs);
        let mut last = Value::Null;
        // One warm-up call (cold caches are not what a dashboard sees after its first load).
        gql(Some(token.clone()), query.clone(), vars.clone()).await?;
        for _ in 0..runs {
            let t = Instant::now();
            last = gql(Some(token.clone()), query.clone(), vars.clone()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut sorted = ms.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let g = if scope == "platform" {
            &last["data"]["growth"]
        } else {
            &last["data"]["organization"]["growth"]
        };
        println!(
            "metrics backend={backend} phase=growth scope={scope} runs={runs} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} min_ms={:.1} cohort={} k={:.3} invitations={} visits={}",
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            sorted[sorted.len() - 1],
            sorted[0],
            g["cohortSize"],
            g["viralCoefficient"].as_f64().unwrap_or(f64::NAN),
            g["invitationsSent"],
            g["shareFunnel"]["visits"],
        );
    }
    Ok(())
}

/// Bytes on disk: the SQLite file with its WAL, or `pg_database_size`.
async fn db_size(db: &str) -> anyhow::Result<u64> {
    if let Some(path) = db.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        let mut total = 0;
        for suffix in ["", "-wal", "-shm"] {
            total += std::fs::metadata(format!("{path}{suffix}")).map_or(0, |m| m.len());
        }
        return Ok(total);
    }
    use sea_orm::{ConnectionTrait, Database, Statement};
    let conn = Database::connect(db).await?;
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT pg_database_size(current_database()) AS n",
        ))
        .await?
        .expect("one row");
    Ok(row.try_get::<i64>("", "n")? as u64)
}
