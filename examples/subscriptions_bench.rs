//! Live-activity fan-out: `SUBSCRIBERS` graphql-transport-ws subscribers of one
//! organization on a running `kfactor serve` (its URL and pid as arguments), one comment
//! mutation over HTTP every `INTERVAL_MS` for `DURATION` seconds. Prints one
//! machine-readable line: delivery latency (from sending the mutation to each subscriber
//! reading its event) p50/p99/max, events missed, and the server's RSS idle (fresh, and
//! after one subscriber came and went), with everyone connected, and after everyone left.
//! Run through `bench/subscriptions` (see bench/README.md).
//!
//! Each subscriber notes when it read the event of which comment; the bench knows when it
//! sent the mutation that made each comment, so every latency is exact and an event that
//! never arrived is counted as missed.
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, protocol::WebSocketConfig, Message,
};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server's resident set size in MiB (`VmRSS` of /proc/PID/status).
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// Waits until the server's RSS stopped shrinking (no change over 0.5 MiB for 12 s, which
/// spans the two 5 s counts of closed sockets the server's purge waits for; at most 40 s),
/// and returns it.
async fn settled_rss(pid: u32) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut since = (Instant::now(), rss_mib(pid)?);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rss_mib(pid)?;
        if (now - since.1).abs() >= 0.5 {
            since = (Instant::now(), now);
        }
        if since.0.elapsed() >= Duration::from_secs(12) || Instant::now() > deadline {
            return Ok(now);
        }
    }
}

/// Comments the warm-up adds (and reads as one subscriber) before the storm.
const WARM_COMMENTS: usize = 3;

/// One subscriber that reads the events of [`WARM_COMMENTS`] comments and leaves: what an
/// instance that has served anything has paged in and set up (the code of a subscription
/// and of a mutation, the first read connection's caches), so the idle it settles at
/// afterwards (`rss_warm_mib`) is that of a serving instance, not of one that never served.
async fn warm_up<F, Fut>(url: &str, token: &str, org: &str, comment: &F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }).to_string())).await?;
    ws.send(Message::text(
        json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($o: ID!) { activity(organizationId: $o) { type data } }",
        "variables": { "o": org } } })
        .to_string(),
    ))
    .await?;
    // Comments until the subscriber read WARM_COMMENTS events (the first may commit before
    // the subscription is live).
    let (mut read, mut k) = (0, 0);
    while read < WARM_COMMENTS {
        if k == 20 {
            bail!("the warm-up subscriber read {read} events of {k} comments");
        }
        comment(k).await?;
        k += 1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(msg) = tokio::time::timeout_at(deadline, ws.next()).await {
            let msg = msg.context("the server closed the warm-up socket")??;
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t)?;
            match v["type"].as_str() {
                Some("next") => read += 1,
                Some("connection_ack") => {}
                Some("ping") => {
                    ws.send(Message::text(json!({ "type": "pong" }).to_string()))
                        .await?
                }
                _ => bail!("unexpected message in the warm-up: {v}"),
            }
        }
    }
    ws.close(None).await?;
    Ok(())
}

struct Shared {
    epoch: Instant,
    /// Subscribers that have read at least one event (the warm-up).
    warm: AtomicUsize,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args.next().context("usage: subscriptions_bench URL PID")?;
    let pid: u32 = args
        .next()
        .context("usage: subscriptions_bench URL PID")?
        .parse()?;
    let subscribers: usize = env("SUBSCRIBERS", 1000);
    let interval = Duration::from_millis(env("INTERVAL_MS", 1000));
    let duration = Duration::from_secs(env("DURATION", 20));
    let mutations = (duration.as_millis() / interval.as_millis().max(1)) as usize;
    let http = reqwest::Client::new();
    let gql = |token: Option<String>, query: &'static str, vars: Value| {
        let http = http.clone();
        let url = format!("{base}/graphql");
        async move {
            let mut req = http
                .post(url)
                .json(&json!({ "query": query, "variables": vars }));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let body: Value = req.send().await?.json().await?;
            if body.get("errors").is_some() {
                bail!("GraphQL errors: {body}");
            }
            anyhow::Ok(body)
        }
    };
    let idle = rss_mib(pid)?;
    let signed = gql(
        None,
        "mutation($e: String!) { signUp(input: {name: \"Ana\", email: $e, password: \"correct horse battery\"}) { token organization { id } } }",
        // One address per run: a second run against the same server (a second storm) signs
        // up again.
        json!({ "e": format!("ana-{}@example.com", std::process::id()) }),
    )
    .await?;
    let token = signed["data"]["signUp"]["token"]
        .as_str()
        .context("token")?
        .to_string();
    let org = signed["data"]["signUp"]["organization"]["id"]
        .as_str()
        .context("org")?
        .to_string();
    let created = gql(
        Some(token.clone()),
        "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"Roadmap\"}) { project { id } } }",
        json!({ "o": org }),
    )
    .await?;
    let project = created["data"]["createProject"]["project"]["id"]
        .as_str()
        .context("project")?
        .to_string();
    let comment = |i: usize| {
        gql(
            Some(token.clone()),
            "mutation($p: ID!, $b: String!) { addComment(projectId: $p, body: $b) { comment { id } } }",
            json!({ "p": project, "b": format!("comment {i}") }),
        )
    };
    let ws_url = format!("{}/graphql/ws", base.replacen("http", "ws", 1));
    warm_up(&ws_url, &token, &org, &comment).await?;
    let warm = settled_rss(pid).await?;

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        warm: AtomicUsize::new(0),
    });
    let connecting = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = Vec::with_capacity(subscribers);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for _ in 0..subscribers {
        let (url, token, org, shared, gate) = (
            ws_url.clone(),
            token.clone(),
            org.clone(),
            shared.clone(),
            gate.clone(),
        );
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let mut req = url.into_client_request()?;
            req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
            let cfg = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(cfg), true).await?;
            ws.send(Message::text(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }).to_string())).await?;
            ws.send(Message::text(json!({ "id": "1", "type": "subscribe", "payload": {
                "query": "subscription($o: ID!) { activity(organizationId: $o) { type data } }",
                "variables": { "o": org } } }).to_string())).await?;
            drop(permit);
            let mut seen: Vec<(String, u64)> = Vec::with_capacity(64);
            let mut warmed = false;
            loop {
                let msg = tokio::select! {
                    m = ws.next() => m,
                    _ = stop.changed() => break,
                };
                let Some(msg) = msg else { bail!("the server closed the socket") };
                let Message::Text(t) = msg? else { continue };
                let v: Value = serde_json::from_str(&t)?;
                match v["type"].as_str() {
                    Some("next") => {
                        let now = shared.epoch.elapsed().as_micros() as u64;
                        if v["payload"]["errors"].is_array() {
                            bail!("stream error: {v}");
                        }
                        if !warmed {
                            warmed = true;
                            shared.warm.fetch_add(1, Ordering::AcqRel);
                        }
                        let id = v["payload"]["data"]["activity"]["data"]["commentId"]
                            .as_str()
                            .context("an event with a commentId")?;
                        seen.push((id.to_string(), now));
                    }
                    Some("ping") => ws.send(Message::text(json!({ "type": "pong" }).to_string())).await?,
                    Some("connection_ack") => {}
                    _ => bail!("unexpected message: {v}"),
                }
            }
            let _ = ws.close(None).await;
            anyhow::Ok(seen)
        }));
    }
    // Warm-up: comment until every subscriber has read an event (their subscriptions run).
    let warm_deadline = Instant::now() + Duration::from_secs(300);
    let mut i = 0;
    while shared.warm.load(Ordering::Acquire) < subscribers {
        if Instant::now() > warm_deadline {
            bail!(
                "only {} of {subscribers} subscribers live after 300 s",
                shared.warm.load(Ordering::Acquire)
            );
        }
        comment(i).await?;
        i += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let connect_s = connecting.elapsed().as_secs_f64();
    // Let the warm-up's events drain, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut tick = tokio::time::interval(interval);
    let mut sent = std::collections::HashMap::with_capacity(mutations);
    for k in 0..mutations {
        tick.tick().await;
        let at = shared.epoch.elapsed().as_micros() as u64;
        let body = comment(i + k).await?;
        let id = body["data"]["addComment"]["comment"]["id"]
            .as_str()
            .context("comment id")?
            .to_string();
        sent.insert(id, at);
    }
    // Give the last event time to arrive everywhere, then measure memory with everyone on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = rss_mib(pid)?;
    stop_tx.send(true)?;
    let mut all = Vec::with_capacity(subscribers * mutations);
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(seen) => all.extend(
                seen.iter()
                    .filter_map(|(id, t)| sent.get(id).map(|s| t.saturating_sub(*s))),
            ),
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("subscriber failed: {e:#}");
                }
            }
        }
    }
    let after = settled_rss(pid).await?;
    all.sort_unstable();
    let expected = subscribers * mutations;
    println!(
        "subscriptions subscribers={subscribers} interval_ms={} mutations={mutations} delivered={} missed={} failed={failed} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} connect_s={connect_s:.1} rss_idle_mib={idle:.1} rss_warm_mib={warm:.1} rss_connected_mib={connected:.1} rss_after_mib={after:.1}",
        interval.as_millis(),
        all.len(),
        expected.saturating_sub(all.len()),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
    );
    Ok(())
}
