//! The body of the dashboard: tiles with their change against the previous window, the
//! charts and the tables. Pure rendering of a [`Dashboard`].
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::charts;
use crate::domain::{
    dashboard::Dashboard,
    entitlements::UpgradePrompt,
    metrics::{Counts, Interval, Question, SOURCES},
};

fn source_name(i: usize) -> &'static str {
    ["Organic", "Invite", "Referral", "Share", "Paid"][i]
}

fn bucket_label(t: DateTime<Utc>, interval: Interval) -> String {
    match interval {
        Interval::Month => t.format("%b %Y").to_string(),
        _ => t.format("%b %-d").to_string(),
    }
}

/// A tile: its id, label, value shown with `digits` decimals, and the change against the
/// previous window. `raw` goes into `data-value` for scripts and tests.
fn tile(
    id: &str,
    label: &str,
    now: Option<f64>,
    before: Option<f64>,
    digits: usize,
    hint: &str,
) -> Markup {
    let shown = |v: Option<f64>| match v {
        Some(v) => format!("{v:.digits$}"),
        None => "∞".into(),
    };
    let delta = match (now, before) {
        (Some(a), Some(b)) => {
            let d = a - b;
            let arrow = if d > 0.0 {
                "▲"
            } else if d < 0.0 {
                "▼"
            } else {
                "="
            };
            format!("{arrow} {d:+.digits$} vs previous ({})", shown(before))
        }
        _ => format!("previous: {}", shown(before)),
    };
    html! {
        div.tile id=(id) data-value=(now.map(|v| v.to_string()).unwrap_or_else(|| "null".into())) title=(hint) {
            span.label { (label) }
            span.value { (shown(now)) }
            span.delta { (delta) }
        }
    }
}

fn upgrade_panel(title: &str, prompt: Option<&UpgradePrompt>) -> Markup {
    html! {
        section.panel {
            h2 { (title) }
            div.upgrade {
                @match prompt {
                    Some(u) => {
                        p { (u.message) }
                        a href=(u.url) { "Upgrade to " (u.plan_key) }
                    }
                    None => p { "This part of the dashboard is not included in your organization's plan." },
                }
            }
        }
    }
}

/// The dashboard of `name` (`scope_key`: `org_…` or `platform`) for the window `q`.
pub fn body(scope_key: &str, name: &str, q: &Question, d: &Dashboard) -> Markup {
    let c = d.current.totals.unwrap_or_default();
    let p = d.previous.totals.unwrap_or_default();
    let sf = d.current.share_funnel.unwrap_or_default();
    let psf = d.previous.share_funnel.unwrap_or_default();
    let nothing = c.signups() == 0 && c.sent == 0 && sf.links_created == 0 && sf.visits == 0;
    let gated = d.current.series.is_none();
    let prompt = d.current.upgrade.as_ref();
    html! {
        h1 data-scope=(scope_key) { (name) }
        @if nothing {
            p.empty #empty-window {
                "Nothing happened in this window yet: no signups, invitations or shared links. "
                "Invite teammates (inviteMember) or share a project (createSharedLink) and the numbers appear here as soon as it happens; or pick a longer range."
            }
        }
        div.tiles {
            (tile("tile-k", "Viral coefficient K", Some(c.viral_coefficient()), Some(p.viral_coefficient()), 3,
                "New users each cohort member brings through invitations (i × c)."))
            (tile("tile-i", "Invitations per user i", Some(c.invitations_per_user()), Some(p.invitations_per_user()), 3,
                "Viral invitations the cohort sent within the attribution window, per member."))
            (tile("tile-c", "Conversion rate c", Some(c.conversion_rate()), Some(p.conversion_rate()), 3,
                "Share of those invitations that became signups."))
            (tile("tile-amplification", "Amplification", c.amplification(), p.amplification(), 2,
                "1 / (1 − K): users each organic user finally brings in; ∞ once K ≥ 1."))
            (tile("tile-share", "Share coefficient", Some(c.share_coefficient()), Some(p.share_coefficient()), 3,
                "SHARE and REFERRAL signups credited to the cohort, per member."))
            (tile("tile-signups", "Signups", Some(c.signups() as f64), Some(p.signups() as f64), 0,
                "Users who signed up (organization: joined) in the window."))
        }
        p.muted #median {
            "Median viral cycle time: "
            @match d.current.median_viral_cycle_hours {
                Some(h) => { strong { (format!("{h:.1} hours")) } " (" (format!("{:.1}", h / 24.0)) " days) from a member's start to an invitee's signup" }
                None => "no invite signups credited to this cohort yet",
            }
            @if let Some(b) = d.previous.median_viral_cycle_hours { " · previous window " (format!("{b:.1} h")) }
            "."
            @if !d.current.complete { " Conversions can still land for this window (it is younger than twice the attribution window)." }
        }
        div.panels {
            @if gated {
                (upgrade_panel("K per bucket and signups by source", prompt))
            } @else {
                (series_panels(q, d))
            }
            (funnels(&c, &p, &sf, &psf))
            @if gated {
                (upgrade_panel("Top inviters and surfaces", prompt))
            } @else {
                (tables(d))
            }
        }
    }
}

fn series_panels(q: &Question, d: &Dashboard) -> Markup {
    let series = d.current.series.as_deref().unwrap_or_default();
    let labels: Vec<String> = series
        .iter()
        .map(|p| bucket_label(p.period_start, q.interval))
        .collect();
    let ks: Vec<f64> = series
        .iter()
        .map(|p| p.counts.viral_coefficient())
        .collect();
    let by_source: Vec<(&str, Vec<i64>)> = (0..SOURCES.len())
        .map(|s| {
            (
                source_name(s),
                series.iter().map(|p| p.counts.by_source[s]).collect(),
            )
        })
        .collect();
    let unit = q.interval.name().to_ascii_lowercase();
    let any_signup = series.iter().any(|p| p.counts.signups() > 0);
    html! {
        section.panel #panel-k {
            h2 { "K per " (unit) }
            (charts::line("chart-k", &format!("Viral coefficient K per {unit}"), &labels, &ks,
                &format!("{unit} starting (UTC)"), "K", |v| format!("{v:.3}")))
            @if !any_signup { p.empty { "No signups in this window, so K is 0 everywhere. K starts moving once new members invite people who sign up." } }
            details {
                summary { "Exact numbers" }
                div.scroll { table {
                    thead { tr { th { "Start (UTC)" } th { "Cohort" } th { "Invitations" } th { "Conversions" } th { "K" } } }
                    tbody { @for pt in series { tr {
                        td { (pt.period_start.format("%Y-%m-%d %H:%M")) }
                        td { (pt.counts.signups()) } td { (pt.counts.cohort_invitations) }
                        td { (pt.counts.cohort_conversions) } td { (format!("{:.3}", pt.counts.viral_coefficient())) }
                    } } }
                } }
            }
        }
        section.panel #panel-signups {
            h2 { "Signups per " (unit) " by source" }
            (charts::stacked("chart-signups", &format!("Signups per {unit}, stacked by acquisition source"), &labels, &by_source,
                &format!("{unit} starting (UTC)"), "signups"))
            @if !any_signup { p.empty { "No signups in this window yet. Share the sign-up link or invite someone to get the first ones." } }
            details {
                summary { "Exact numbers" }
                div.scroll { table {
                    thead { tr { th { "Start (UTC)" } @for s in 0..SOURCES.len() { th { (source_name(s)) } } th { "Total" } } }
                    tbody { @for pt in series { tr {
                        td { (pt.period_start.format("%Y-%m-%d %H:%M")) }
                        @for v in pt.counts.by_source { td { (v) } }
                        td { (pt.counts.signups()) }
                    } } }
                } }
            }
        }
    }
}

fn funnels(
    c: &Counts,
    p: &Counts,
    sf: &crate::domain::metrics::ShareFunnel,
    psf: &crate::domain::metrics::ShareFunnel,
) -> Markup {
    html! {
        section.panel #panel-invite-funnel {
            h2 { "Invite funnel" }
            @if c.sent == 0 {
                p.empty { "No invitations were sent in this window. Invite teammates from the app (inviteMember); every step from here on compounds." }
            } @else {
                (charts::funnel("chart-invite-funnel", "Invitations sent in the window: opened, accepted, activated",
                    &[("Sent", c.sent, false), ("Opened", c.opened, true), ("Accepted", c.accepted, true), ("Activated", c.activated, true)]))
            }
            table {
                thead { tr { th { "Step" } th { "Count" } th { "Step conversion" } th { "Previous" } } }
                tbody {
                    tr { td { "Sent" } td { (c.sent) } td { "" } td { (p.sent) } }
                    tr { td { "Opened" } td { (c.opened) } td { (charts::pct(c.opened, c.sent)) } td { (p.opened) } }
                    tr { td { "Accepted" } td { (c.accepted) } td { (charts::pct(c.accepted, c.opened)) } td { (p.accepted) } }
                    tr { td { "Activated" } td { (c.activated) } td { (charts::pct(c.activated, c.accepted)) } td { (p.activated) } }
                }
            }
        }
        section.panel #panel-share-funnel {
            h2 { "Share funnel" }
            @if sf.links_created == 0 && sf.visits == 0 {
                p.empty { "No shared links were created or opened in this window. Share a project (createSharedLink) so people without an account can see it." }
            } @else {
                (charts::funnel("chart-share-funnel", "Shared links: visits, unique visitors, signups",
                    &[("Links created", sf.links_created, false), ("Visits", sf.visits, false), ("Unique visitors", sf.unique_visitors, true), ("Signups", sf.signups, true)]))
            }
            table {
                thead { tr { th { "Step" } th { "Count" } th { "Step conversion" } th { "Previous" } } }
                tbody {
                    tr { td { "Links created" } td { (sf.links_created) } td { "" } td { (psf.links_created) } }
                    tr { td { "Visits" } td { (sf.visits) } td { "" } td { (psf.visits) } }
                    tr { td { "Unique visitors" } td { (sf.unique_visitors) } td { (charts::pct(sf.unique_visitors, sf.visits)) } td { (psf.unique_visitors) } }
                    tr { td { "Signups" } td { (sf.signups) } td { (charts::pct(sf.signups, sf.unique_visitors)) } td { (psf.signups) } }
                }
            }
        }
    }
}

fn tables(d: &Dashboard) -> Markup {
    let inviters = d.current.top_inviters.as_deref().unwrap_or_default();
    let surfaces = d.current.surfaces.as_deref().unwrap_or_default();
    html! {
        section.panel #panel-inviters {
            h2 { "Top inviters" }
            @if inviters.is_empty() {
                p.empty { "Nobody sent an invitation in this window yet." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Member" } th { "Invitations sent" } th { "Accepted" } th { "Acceptance" } } }
                    tbody { @for i in inviters.iter().take(20) { tr {
                        td { (d.names.get(&i.user_id).map(String::as_str).unwrap_or("Unknown")) }
                        td { (i.invitations_sent) } td { (i.accepted) } td { (charts::pct(i.accepted, i.invitations_sent)) }
                    } } }
                } }
            }
        }
        section.panel #panel-surfaces {
            h2 { "Surfaces" }
            @if surfaces.is_empty() {
                p.empty { "No invitations or shared links in this window. Pass a `surface` label when inviting or sharing to see which part of your product drives growth." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Surface" } th { "Invitations" } th { "Shares" } th { "Viral signups" } } }
                    tbody { @for s in surfaces { tr {
                        td { (s.surface) } td { (s.invitations_sent) } td { (s.shares_created) } td { (s.viral_signups) }
                    } } }
                } }
            }
        }
    }
}
