//! Presence and cursors: `VIEWERS` graphql-transport-ws viewers of one project on a running
//! `kfactor serve` (its URL and pid as arguments), each sending `RATE_HZ` cursor updates a
//! second (`updatePresence` over its own socket) for `DURATION` seconds. Prints one
//! machine-readable line: latency from sending an update to each other viewer reading it
//! p50/p99/max, updates sent, frames and deliveries read, and the server's RSS idle and with
//! everyone connected (and the difference per viewer). Run through `bench/presence`.
//! Several comma-separated URLs and pids (instances on one PostgreSQL database) spread the
//! viewers over the instances in turn, so most deliveries cross from one to another; RSS is
//! then the sum over the instances.
//!
//! Every update carries its send time (microseconds since the bench started) as its
//! `state`; a frame carries each changed viewer's last value only (coalescing), so a
//! delivery is measured from the send of the value it carries, and updates overtaken
//! within a frame interval are counted as coalesced, not as missed.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The servers' resident set size in MiB, summed.
fn rss_all(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|p| rss_mib(*p)).sum()
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

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

const PRESENCE: &str = "subscription($p: ID) { presence(projectId: $p) { viewerId viewerKey full left viewers { id state } } }";
const UPDATE: &str = "mutation($p: ID, $k: String!, $x: Float!, $s: String) { updatePresence(projectId: $p, viewerKey: $k, cursor: {x: $x, y: 1}, state: $s) { ok userErrors { code message } } }";

/// What one viewer saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<u64>,
    frames: usize,
    sent: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let urls: Vec<String> = args
        .next()
        .context("usage: presence_bench URL[,URL…] PID[,PID…]")?
        .split(',')
        .map(str::to_string)
        .collect();
    let pids: Vec<u32> = args
        .next()
        .context("usage: presence_bench URL[,URL…] PID[,PID…]")?
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let base = urls[0].clone();
    let viewers: usize = env("VIEWERS", 50);
    let rate: u64 = env("RATE_HZ", 10);
    let duration = Duration::from_secs(env("DURATION", 20));
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
    let idle = rss_all(&pids)?;
    let signed = gql(
        None,
        "mutation { signUp(input: {name: \"Ana\", email: \"ana@example.com\", password: \"correct horse battery\"}) { token organization { id } } }",
        json!({}),
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

    let epoch = Instant::now();
    let ws_urls: Vec<String> = urls
        .iter()
        .map(|u| format!("{}/graphql/ws", u.replacen("http", "ws", 1)))
        .collect();
    // Everyone joins first; the clock of the measurement starts once all are in.
    let joined = Arc::new(tokio::sync::Barrier::new(viewers + 1));
    let start = Arc::new(tokio::sync::Barrier::new(viewers + 1));
    let mut tasks = Vec::with_capacity(viewers);
    for n in 0..viewers {
        let (url, token, project, joined, start) = (
            ws_urls[n % ws_urls.len()].clone(),
            token.clone(),
            project.clone(),
            joined.clone(),
            start.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut req = url.into_client_request()?;
            req.headers_mut()
                .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
            let send = |v: Value| Message::text(v.to_string());
            ws.send(send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }))).await?;
            ws.send(send(json!({ "id": "p", "type": "subscribe", "payload": { "query": PRESENCE, "variables": { "p": project } } }))).await?;
            let mut me = String::new();
            let mut key = String::new();
            while key.is_empty() {
                let Some(msg) = ws.next().await else { bail!("closed before the first frame") };
                let Message::Text(t) = msg? else { continue };
                let v: Value = serde_json::from_str(&t)?;
                if v["type"] == "next" && v["id"] == "p" {
                    let f = &v["payload"]["data"]["presence"];
                    me = f["viewerId"].as_str().context("viewerId")?.to_string();
                    key = f["viewerKey"].as_str().context("viewerKey")?.to_string();
                }
            }
            joined.wait().await;
            start.wait().await;
            let until = Instant::now() + duration;
            // Viewers start spread over one interval, as real ones would.
            let every = Duration::from_micros(1_000_000 / rate.max(1));
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + every.mul_f64(n as f64 / viewers as f64),
                every,
            );
            let mut seen = Seen::default();
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if Instant::now() >= until {
                            break;
                        }
                        seq += 1;
                        let at = epoch.elapsed().as_micros() as u64;
                        ws.send(send(json!({ "id": format!("u{seq}"), "type": "subscribe", "payload": {
                            "query": UPDATE,
                            "variables": { "p": project, "k": key, "x": seq as f64, "s": at.to_string() } } }))).await?;
                        seen.sent += 1;
                    }
                    msg = ws.next() => {
                        let Some(msg) = msg else { bail!("the server closed the socket") };
                        let Message::Text(t) = msg? else { continue };
                        let now = epoch.elapsed().as_micros() as u64;
                        let v: Value = serde_json::from_str(&t)?;
                        match (v["type"].as_str(), v["id"].as_str()) {
                            (Some("next"), Some("p")) => {
                                let f = &v["payload"]["data"]["presence"];
                                if f.is_null() {
                                    bail!("presence ended: {v}");
                                }
                                seen.frames += 1;
                                for viewer in f["viewers"].as_array().context("viewers")? {
                                    if viewer["id"] == me.as_str() {
                                        continue;
                                    }
                                    if let Some(s) = viewer["state"].as_str().and_then(|s| s.parse::<u64>().ok()) {
                                        seen.latencies.push(now.saturating_sub(s));
                                    }
                                }
                            }
                            (Some("next"), Some(_)) => {
                                let p = &v["payload"]["data"]["updatePresence"];
                                if p["ok"] != true {
                                    bail!("update refused: {v}");
                                }
                            }
                            (Some("ping"), _) => ws.send(send(json!({ "type": "pong" }))).await?,
                            (Some("complete"), _) => {}
                            _ => bail!("unexpected message: {v}"),
                        }
                    }
                }
            }
            anyhow::Ok((ws, seen))
        }));
    }
    joined.wait().await;
    let rss_joined = rss_all(&pids)?;
    start.wait().await;
    let mut all = Vec::new();
    let (mut frames, mut sent, mut failed) = (0, 0, 0);
    let mut sockets = Vec::new();
    for t in tasks {
        match t.await? {
            Ok((ws, seen)) => {
                all.extend(seen.latencies);
                frames += seen.frames;
                sent += seen.sent;
                sockets.push(ws);
            }
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("viewer failed: {e:#}");
                }
            }
        }
    }
    let rss_busy = rss_all(&pids)?;
    drop(sockets);
    all.sort_unstable();
    println!(
        "presence instances={} viewers={viewers} rate_hz={rate} seconds={} updates={sent} frames={frames} deliveries={} failed={failed} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} rss_idle_mib={idle:.1} rss_joined_mib={rss_joined:.1} rss_busy_mib={rss_busy:.1} rss_per_viewer_kib={:.1}",
        urls.len(),
        duration.as_secs(),
        all.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
        (rss_joined - idle) * 1024.0 / viewers.max(1) as f64,
    );
    Ok(())
}
