//! Shared-link visit throughput: guests open one shared link over HTTP as fast as
//! `CONNECTIONS` closed-loop connections can, visitor ids rotating over a pool; afterwards the
//! link's `accessCount` and `uniqueVisitors` must equal what the responses say. Run through
//! `bench/visits` (see bench/README.md).
//!
//! The server runs in this process on a runtime of its own (2 worker threads), the load on
//! another, so the two compete for the cores as a separate load generator would.
//!
//! Every connection stops after the answer to its last visit, so every visit the server may
//! have counted was seen by the bench: counting is checked exactly.
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use kfactor::{clock::SystemClock, config::Config, App};
use serde_json::{json, Value};

const VISIT: &str = "query($t:String!,$v:String){sharedLink(token:$t,visitorId:$v){\
    permission project{name content} organizationName sharedBy canComment canEdit}}";

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| v.trim_end_matches('s').to_string())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let db_url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite:///tmp/kfactor-visits-bench.db?mode=rwc".into());
    let backend = if db_url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let opts = Options {
        duration: Duration::from_secs(env("DURATION", 10)),
        warmup: Duration::from_secs(env("WARMUP", 2)),
        connections: env("CONNECTIONS", 32),
        visitors: env("VISITORS", 5000),
    };

    // KFACTOR_* variables reach the server, as with `kfactor serve`.
    let mut config = Config::load(std::path::Path::new("/nonexistent/kfactor.toml"))
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    config.database_url = db_url.clone();
    if std::env::var("KFACTOR_LOG").is_err() {
        config.log = "warn".into();
    }
    // All the load comes from one address with VISITORS ids: lift the per-address guest
    // limits (which exist to stop exactly one address doing this) unless set explicitly.
    if std::env::var("KFACTOR_LIMIT_PUBLIC_LOOKUPS_PER_IP").is_err() {
        config.safety.public_lookups_per_ip = None;
    }
    if std::env::var("KFACTOR_LIMIT_VISITOR_IDS_PER_IP").is_err() {
        config.safety.visitor_ids_per_ip = None;
    }

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let base = server.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        config.public_url = format!("http://{addr}");
        let app = App::build(config, Arc::new(SystemClock)).await?;
        let workers = app.spawn_workers()?;
        tokio::spawn(async move {
            let _workers = workers;
            kfactor::serve(&app, listener, std::future::pending())
                .await
                .expect("serving");
        });
        anyhow::Ok(format!("http://{addr}"))
    })?;

    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = load.block_on(bench(backend, &base, &opts));
    server.shutdown_background();
    let exact = outcome?;
    if !exact {
        bail!("{backend}: the counts are not exact");
    }
    Ok(())
}

struct Options {
    duration: Duration,
    warmup: Duration,
    connections: usize,
    visitors: usize,
}

/// One GraphQL request as the owner; fails on errors and userErrors.
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
    if body.get("errors").is_some() {
        bail!("GraphQL errors: {}", body["errors"]);
    }
    if let Some(data) = body["data"].as_object() {
        for payload in data.values() {
            if payload["userErrors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
            {
                bail!("userErrors: {}", payload["userErrors"]);
            }
        }
    }
    Ok(body)
}

struct Link {
    owner: String,
    org: String,
    id: String,
    token: String,
}

async fn setup(http: &reqwest::Client, base: &str) -> anyhow::Result<Link> {
    let email = format!("bench-{}@example.com", uuid::Uuid::now_v7().simple());
    let b = gql(http, base, None,
        "mutation($i:SignUpInput!){signUp(input:$i){token organization{id} userErrors{code message}}}",
        json!({ "i": { "email": email, "password": "bench-password-123", "name": "Bench Owner" } })).await?;
    let owner = b["data"]["signUp"]["token"]
        .as_str()
        .context("token")?
        .to_string();
    let org = b["data"]["signUp"]["organization"]["id"]
        .as_str()
        .context("organization")?
        .to_string();
    let b = gql(http, base, Some(&owner),
        "mutation($i:CreateProjectInput!){createProject(input:$i){project{id} userErrors{code message}}}",
        json!({ "i": { "organizationId": org, "name": "Bench project",
            "content": "A benchmark project. Guests open it through a shared link; every open counts a visit." } })).await?;
    let project = b["data"]["createProject"]["project"]["id"]
        .as_str()
        .context("project")?
        .to_string();
    let b = gql(http, base, Some(&owner),
        "mutation($i:CreateSharedLinkInput!){createSharedLink(input:$i){sharedLink{id url} userErrors{code message}}}",
        json!({ "i": { "resourceType": "PROJECT", "resourceId": project, "permission": "VIEW" } })).await?;
    let link = &b["data"]["createSharedLink"]["sharedLink"];
    let url = url::Url::parse(link["url"].as_str().context("url")?)?;
    let token = match url.path_segments().map(|s| s.collect::<Vec<_>>()) {
        Some(s) if s.len() == 2 && s[0] == "s" => s[1].to_string(),
        _ => bail!("unexpected shared link url {url}"),
    };
    Ok(Link {
        owner,
        org,
        id: link["id"].as_str().context("id")?.to_string(),
        token,
    })
}

/// The link's (accessCount, uniqueVisitors), read as the owner.
async fn counts(http: &reqwest::Client, base: &str, link: &Link) -> anyhow::Result<(u64, u64)> {
    let b = gql(
        http,
        base,
        Some(&link.owner),
        "query($o:ID!){organization(id:$o){sharedLinks{nodes{id accessCount uniqueVisitors}}}}",
        json!({ "o": link.org }),
    )
    .await?;
    let nodes = b["data"]["organization"]["sharedLinks"]["nodes"]
        .as_array()
        .context("nodes")?;
    let n = nodes
        .iter()
        .find(|n| n["id"] == link.id.as_str())
        .context("link not listed")?;
    Ok((
        n["accessCount"].as_u64().context("accessCount")?,
        n["uniqueVisitors"].as_u64().context("uniqueVisitors")?,
    ))
}

/// What one run of the load saw.
#[derive(Default)]
struct Run {
    ok: u64,
    non200: u64,
    gql_errors: u64,
    null_views: u64,
    socket_errors: u64,
    timeouts: u64,
    /// Sent but never answered: the server may or may not have counted them.
    lost: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
    /// Every visitor id of the pool got at least one successful visit.
    covered: bool,
}

impl Run {
    fn errors(&self) -> u64 {
        self.non200 + self.gql_errors + self.null_views + self.socket_errors
    }

    fn pct_ms(&self, p: f64) -> f64 {
        let l = &self.latencies_us;
        if l.is_empty() {
            return 0.0;
        }
        l[((l.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
    }
}

async fn load(base: &str, token: &str, opts: &Options, secs: Duration) -> anyhow::Result<Run> {
    let seen: Arc<Vec<AtomicBool>> =
        Arc::new((0..opts.visitors).map(|_| AtomicBool::new(false)).collect());
    let start = Instant::now();
    let deadline = start + secs;
    let mut tasks = Vec::new();
    for c in 0..opts.connections {
        let (url, token, seen) = (format!("{base}/graphql"), token.to_string(), seen.clone());
        let (visitors, connections) = (opts.visitors, opts.connections);
        tasks.push(tokio::spawn(async move {
            // One client per connection, one connection per client: a closed loop like wrk's.
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(2))
                .build()
                .expect("HTTP client");
            let mut run = Run::default();
            // Connections start at different places in the pool, not in lock-step.
            let mut i = c * visitors / connections;
            let mut last = start;
            while Instant::now() < deadline {
                let visitor = i % visitors;
                i += 1;
                let body = json!({ "query": VISIT, "variables": { "t": token, "v": format!("bench-visitor-{visitor}") } });
                let sent = Instant::now();
                let resp = http.post(&url).header("accept", "application/json").json(&body).send().await;
                let resp = match resp {
                    Ok(r) => r,
                    Err(e) => {
                        run.lost += 1;
                        if e.is_timeout() { run.timeouts += 1 } else { run.socket_errors += 1 }
                        continue;
                    }
                };
                let status = resp.status();
                let text = resp.bytes().await;
                last = Instant::now();
                run.latencies_us.push(last.duration_since(sent).as_micros() as u64);
                let Ok(text) = text else {
                    run.lost += 1;
                    run.socket_errors += 1;
                    continue;
                };
                if status != 200 {
                    run.non200 += 1;
                    continue;
                }
                match serde_json::from_slice::<Value>(&text) {
                    Ok(v) if v.get("errors").is_some() => run.gql_errors += 1,
                    Ok(v) if v["data"]["sharedLink"].is_object() => {
                        run.ok += 1;
                        seen[visitor].store(true, Ordering::Relaxed);
                    }
                    Ok(_) => run.null_views += 1,
                    Err(_) => run.gql_errors += 1,
                }
            }
            run.elapsed = last.duration_since(start);
            run
        }));
    }
    let mut total = Run::default();
    for t in tasks {
        let r = t.await?;
        total.ok += r.ok;
        total.non200 += r.non200;
        total.gql_errors += r.gql_errors;
        total.null_views += r.null_views;
        total.socket_errors += r.socket_errors;
        total.timeouts += r.timeouts;
        total.lost += r.lost;
        total.latencies_us.extend(r.latencies_us);
        total.elapsed = total.elapsed.max(r.elapsed);
    }
    total.latencies_us.sort_unstable();
    total.covered = seen.iter().all(|s| s.load(Ordering::Relaxed));
    Ok(total)
}

async fn bench(backend: &str, base: &str, opts: &Options) -> anyhow::Result<bool> {
    let http = reqwest::Client::new();
    let link = setup(&http, base).await?;
    let (before, _) = counts(&http, base, &link).await?;
    eprintln!(
        "{backend}: link {} ready; warming up {:?}",
        link.id, opts.warmup
    );
    let warm = load(base, &link.token, opts, opts.warmup).await?;
    let (mid, _) = counts(&http, base, &link).await?;
    eprintln!(
        "{backend}: measuring {:?}, {} connections",
        opts.duration, opts.connections
    );
    let run = load(base, &link.token, opts, opts.duration).await?;
    let (after, unique) = counts(&http, base, &link).await?;

    let counted = after - mid;
    // Exact: the run's counted visits equal its successful responses, and over the link's
    // whole life (warm-up included) accessCount equals every successful response.
    let exact = counted == run.ok && after == before + warm.ok + run.ok;
    let (unique_expected, unique_exact) = if run.covered {
        (
            opts.visitors.to_string(),
            (unique == opts.visitors as u64).to_string(),
        )
    } else {
        ("?".into(), "n/a".into())
    };
    let secs = run.elapsed.as_secs_f64();
    println!(
        "visits backend={backend} rps={:.0} p50_ms={:.1} p99_ms={:.1} requests={} errors={} counted={counted} exact={exact} \
         unique={unique} unique_expected={unique_expected} unique_exact={unique_exact} lost={} timeouts={} elapsed_s={secs:.3} \
         warmup_requests={} warmup_errors={} warmup_lost={} access_count={after} connections={}",
        if secs > 0.0 { run.ok as f64 / secs } else { 0.0 },
        run.pct_ms(0.5),
        run.pct_ms(0.99),
        run.ok,
        run.errors(),
        run.lost,
        run.timeouts,
        warm.ok,
        warm.errors(),
        warm.lost,
        opts.connections,
    );
    if !exact {
        eprintln!("{backend}: NOT EXACT: accessCount went {before} -> {mid} (warm-up ok {}) -> {after} (run ok {}, lost {})", warm.ok, run.ok, run.lost);
    }
    Ok(exact && unique_exact != "false")
}
