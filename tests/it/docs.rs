//! The docs match the code: every metric exists from start-up, and the metric list, the
//! names the code records and the README's names are the same set.
use std::{collections::BTreeSet, path::Path};

use crate::helpers::spawn;

/// Every `kfactor_…` name in `text` that looks like a metric.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("kfactor_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        // Metrics end in a unit (`_seconds`, `_bytes`) or `_total`/`_depth`/`_size` by Prometheus
        // convention, or name what they count (`_viewers`, `_statements`).
        if [
            "_total",
            "_seconds",
            "_bytes",
            "_size",
            "_depth",
            "_viewers",
            "_statements",
        ]
        .iter()
        .any(|s| name.ends_with(s))
        {
            out.insert(name);
        }
    }
    out
}

fn source_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            source_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[tokio::test]
async fn every_metric_is_listed_documented_and_exported_from_the_start() {
    let listed: BTreeSet<String> = kfactor::metric_names::ALL
        .iter()
        .map(|(n, _, _)| n.to_string())
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    let mut recorded = BTreeSet::new();
    for f in files {
        if f.ends_with("metric_names.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for kind in ["counter!(", "gauge!(", "histogram!("] {
            for chunk in text.split(kind).skip(1) {
                if let Some(name) = chunk
                    .trim_start()
                    .strip_prefix('"')
                    .and_then(|c| c.split('"').next())
                {
                    recorded.insert(name.to_string());
                }
            }
        }
    }
    assert_eq!(
        recorded, listed,
        "src/metric_names.rs must list exactly what the code records"
    );

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(
        metric_names_in(&readme),
        listed,
        "the README must document exactly the listed metrics"
    );

    let app = spawn().await;
    let text = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in &listed {
        assert!(
            text.lines().any(|l| l.starts_with(name.as_str())),
            "{name} is not exported at start-up:\n{text}"
        );
    }
}

/// The default upgrade link of a LIMIT_REACHED prompt opens a page: the plan, what it lifts.
#[tokio::test]
async fn the_upgrade_link_kfactor_prints_renders_a_page() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    for n in 0..3 {
        crate::projects::create_project(&app, &ana, &format!("P{n}")).await;
    }
    let refused = app
        .gql(Some(&ana.token), "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"four\"}) { userErrors { code upgrade { url } } } }", serde_json::json!({ "o": ana.org_id }))
        .await;
    let url = refused["data"]["createProject"]["userErrors"][0]["upgrade"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{refused}"))
        .to_string();
    let resp = app.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Upgrade to Pro"), "{html}");
    assert!(
        html.contains("lifts <strong>projects</strong>: unlimited"),
        "{html}"
    );
    assert!(
        html.contains("KFACTOR_UPGRADE_URL"),
        "no checkout configured: {html}"
    );

    let resp = app
        .http
        .get(format!("{}/upgrade?plan=nope", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// docs/webhook-events.md documents exactly the event types the server accepts.
#[test]
fn the_webhook_event_types_documented_are_the_servers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/webhook-events.md")).unwrap();
    let documented: BTreeSet<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`'))
        .collect();
    let served: BTreeSet<&str> = kfactor::domain::webhooks::EVENT_TYPES.into_iter().collect();
    assert_eq!(documented, served);
}
