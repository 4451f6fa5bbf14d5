//! `GET /upgrade?plan=…&feature=…&organization=…`: the page behind every upgrade link kfactor
//! prints by default (`UpgradePrompt.url`), until a frontend replaces it: the plan, what it
//! lifts, and the way to checkout when one is configured.
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::html;
use serde::Deserialize;

use super::{pages::page, AppState};
use crate::domain::{ids::OrgId, plans::Grant};

/// The query of an upgrade link.
#[derive(Deserialize)]
pub struct UpgradeQuery {
    plan: Option<String>,
    feature: Option<String>,
    organization: Option<String>,
}

/// How a plan grants a feature, in words.
fn grant_text(grant: Option<&Grant>) -> String {
    match grant {
        Some(Grant::Flag(true)) => "included".into(),
        Some(Grant::Flag(false)) | None => "not included".into(),
        Some(Grant::Count(n)) => format!("up to {n}"),
        Some(Grant::Word(w)) => w.clone(),
    }
}

/// `GET /upgrade`.
pub async fn page_for(State(app): State<AppState>, Query(q): Query<UpgradeQuery>) -> Response {
    let svc = &app.svc;
    let Some(plan) = q.plan.as_deref().and_then(|k| svc.plans.plan(k)) else {
        let known: Vec<&str> = svc.plans.plans.iter().map(|p| p.name.as_str()).collect();
        return (
            StatusCode::NOT_FOUND,
            page(
                "No such plan",
                html! {
                    h1 { "No such plan" }
                    p.error { "This upgrade link names no plan of this server. Plans: " (known.join(", ")) "." }
                },
            ),
        )
            .into_response();
    };
    let feature = q
        .feature
        .as_deref()
        .and_then(|f| svc.plans.features.get(f).map(|def| (f, def)));
    // A checkout of the operator's own (KFACTOR_UPGRADE_URL) takes over from this page.
    let checkout = svc.config.upgrade_url.as_ref().map(|_| {
        let org = q.organization.as_deref().and_then(|o| OrgId::parse(o).ok());
        crate::domain::entitlements::upgrade_url_for(
            svc,
            org,
            &plan.key,
            feature.map_or("", |(f, _)| f),
        )
    });
    page(
        &format!("Upgrade to {}", plan.name),
        html! {
            h1 { "Upgrade to " (plan.name) }
            @if let Some((name, def)) = feature {
                p { (plan.name) " lifts " strong { (def.label) } ": " (grant_text(plan.features.get(name))) "." }
            }
            h2 { "What " (plan.name) " includes" }
            ul {
                @for (name, def) in &svc.plans.features {
                    li { (def.label) ": " (grant_text(plan.features.get(name))) }
                }
            }
            @match checkout {
                Some(url) => p { a href=(url) { "Continue to checkout" } },
                None => p { "Billing is not connected on this server yet: ask its operator to set KFACTOR_UPGRADE_URL to a checkout, or platform staff to change the plan." },
            }
        },
    )
    .into_response()
}
