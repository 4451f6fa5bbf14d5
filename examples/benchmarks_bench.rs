//! `Organization.benchmarks` latency on a large demo dataset: seeds a fresh database with
//! `kfactor seed-demo` (unless `--reuse`), serves it with `kfactor serve`, and asks the
//! largest organization's benchmarks for the dashboard's default window (the 12 weeks up to the
//! end of today, UTC) over HTTP: waits for the precompute worker's first pass (how long it took
//! and each window's computation, from the server's log), then the first call, RUNS calls
//! served from the cache, and COLD_RUNS calls on a second server with the cache off
//! (`KFACTOR_BENCHMARKS_CACHE_SECONDS=0`: every call recomputes every organization's values,
//! the cold pass). Prints one machine-readable line per phase. Run through `bench/benchmarks`.
//!
//! Usage: benchmarks_bench KFACTOR_BIN DATABASE_URL [--users N] [--weeks W] [--runs R]
//!        [--cold-runs C] [--reuse]
use std::{
    io::BufRead,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

const FIELDS: &str = "sizeBucket optedOut computedAt
  viralCoefficient { ...B } inviteAcceptanceRate { ...B } activationRate { ...B } shareConversion { ...B }";
const FRAGMENT: &str =
    "fragment B on Benchmark { value available hiddenReason contributors percentile median }";

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

/// Starts `kfactor serve` on a free loopback port with extra environment; waits for health.
/// The server's log lines (stdout) about benchmark computations arrive on the returned channel.
async fn serve(
    bin: &str,
    db: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<(Server, String, mpsc::Receiver<Value>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .env("KFACTOR_DATABASE_URL", db)
        .env("KFACTOR_BIND", format!("127.0.0.1:{port}"))
        .env(
            "KFACTOR_LOG",
            std::env::var("KFACTOR_LOG").unwrap_or_else(|_| {
                "warn,kfactor::precompute=info,kfactor::domain::benchmarks=info".into()
            }),
        )
        // One client asks over and over: the per-organization limit would refuse it.
        .env("KFACTOR_LIMIT_BENCHMARKS_PER_ORG", "off")
        // The server logs JSON lines to stdout.
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let (tx, logs) = mpsc::channel();
    let stderr = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            match serde_json::from_str::<Value>(&line) {
                Ok(v)
                    if v["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("benchmarks")) =>
                {
                    let _ = tx.send(v);
                }
                Ok(_) => {}
                Err(_) => eprintln!("{line}"),
            }
        }
    });
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // Migrating a large database (a new index) can take a while.
    let deadline = Instant::now() + Duration::from_secs(1800);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((server, base, logs))
}

async fn gql(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    query: &str,
    vars: Value,
) -> anyhow::Result<Value> {
    let mut req = http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let body: Value = req.send().await?.json().await?;
    anyhow::ensure!(body.get("errors").is_none(), "{body}");
    Ok(body)
}

fn summary(b: &Value) -> String {
    let b = &b["data"]["organization"]["benchmarks"];
    let mut out = format!("bucket={}", b["sizeBucket"].as_str().unwrap_or("?"));
    for (key, name) in [
        ("k", "viralCoefficient"),
        ("acceptance", "inviteAcceptanceRate"),
        ("activation", "activationRate"),
        ("share", "shareConversion"),
    ] {
        let m = &b[name];
        out.push_str(&format!(
            " {key}_contributors={} {key}_percentile={}",
            m["contributors"],
            m["percentile"]
                .as_f64()
                .map_or("null".into(), |p| format!("{p:.1}"))
        ));
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bin = args.get(1).expect("KFACTOR_BIN").clone();
    let db = args.get(2).expect("DATABASE_URL").clone();
    let users: usize = arg(&args, "--users").map_or(1_000_000, |v| v.parse().unwrap());
    let weeks: u32 = arg(&args, "--weeks").map_or(52, |v| v.parse().unwrap());
    let runs: usize = arg(&args, "--runs").map_or(20, |v| v.parse().unwrap());
    let cold_runs: usize = arg(&args, "--cold-runs").map_or(5, |v| v.parse().unwrap());
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
            "benchmarks backend={backend} phase=seed users={users} weeks={weeks} seconds={:.1}",
            started.elapsed().as_secs_f64()
        );
    }

    let small = small_org(&db).await?;
    let http = reqwest::Client::new();
    // The dashboard's default window, one the precompute worker keeps.
    let to = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        + chrono::Duration::days(1);
    let from = to - chrono::Duration::weeks(12);
    let query = format!(
        "query($o: ID!, $f: DateTime!, $t: DateTime!) {{ organization(id: $o) {{ benchmarks(from: $f, to: $t) {{ {FIELDS} }} }} }} {FRAGMENT}"
    );
    for (phase, env, n) in [
        ("cached", vec![], runs),
        (
            "uncached",
            vec![("KFACTOR_BENCHMARKS_CACHE_SECONDS", "0")],
            cold_runs,
        ),
    ] {
        let started = Instant::now();
        let (_server, base, logs) = serve(&bin, &db, &env).await?;
        if phase == "cached" {
            println!(
                "benchmarks backend={backend} phase=start seconds={:.1}",
                started.elapsed().as_secs_f64()
            );
            // The worker's first pass: each window's computation, then the pass.
            loop {
                let v = logs.recv_timeout(Duration::from_secs(1800))?;
                // Flattened JSON events: the fields sit beside the message.
                let f = &v;
                if v["message"] == "benchmarks computed" {
                    println!(
                        "benchmarks backend={backend} phase=precompute_window from={} to={} ms={} organizations={}",
                        f["from"].as_str().unwrap_or("?"),
                        f["to"].as_str().unwrap_or("?"),
                        f["ms"],
                        f["organizations"]
                    );
                } else if v["message"] == "benchmarks precomputed" {
                    println!(
                        "benchmarks backend={backend} phase=precompute windows={} worker_ms={} done_after_start_s={:.1}",
                        f["windows"],
                        f["ms"],
                        started.elapsed().as_secs_f64()
                    );
                    break;
                }
            }
        }
        let login = gql(
            &http,
            &base,
            None,
            "mutation { logIn(input: {email: \"user0@demo.kfactor.test\", password: \"demo-password\"}) { token user { memberships { organization { id } } } } }",
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
        let vars = json!({ "o": org, "f": from, "t": to });
        // A small organization too (staff may ask any): its bucket is well populated.
        let small_vars = json!({ "o": small, "f": from, "t": to });
        let t = Instant::now();
        let first = gql(&http, &base, Some(&token), &query, vars.clone()).await?;
        let first_ms = t.elapsed().as_secs_f64() * 1000.0;
        if phase == "cached" {
            println!(
                "benchmarks backend={backend} phase=first_call ms={first_ms:.1} {}",
                summary(&first)
            );
        }
        let mut ms = Vec::with_capacity(n);
        let mut last = first;
        for _ in 0..n {
            let t = Instant::now();
            last = gql(&http, &base, Some(&token), &query, vars.clone()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "benchmarks backend={backend} phase={phase} org=largest runs={n} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} min_ms={:.1} {}",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms[ms.len() - 1],
            ms[0],
            summary(&last)
        );
        let mut ms = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            last = gql(&http, &base, Some(&token), &query, small_vars.clone()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "benchmarks backend={backend} phase={phase} org=three_members runs={n} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} min_ms={:.1} {}",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms[ms.len() - 1],
            ms[0],
            summary(&last)
        );
    }
    Ok(())
}

/// The organization of three members that someone joined last (so it has a cohort in the
/// window), as an API id.
async fn small_org(db: &str) -> anyhow::Result<String> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let conn = Database::connect(db).await?;
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT organization_id AS o FROM memberships GROUP BY organization_id \
             HAVING COUNT(*) = 3 ORDER BY MAX(joined_at) DESC, organization_id LIMIT 1",
        ))
        .await?
        .expect("an organization of three members");
    let id: uuid::Uuid = row.try_get("", "o")?;
    Ok(format!("org_{}", id.simple()))
}
