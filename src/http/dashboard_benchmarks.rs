//! The dashboard's benchmarks panel: where the organization stands among organizations of
//! its size for the selected window, with why a benchmark is hidden when it is.
use maud::{html, Markup};

use crate::domain::benchmarks::{Benchmark, Benchmarks, Hidden, Metric, SizeBucket, MIN_OTHERS};

/// What the panel shows.
pub enum Panel {
    /// Platform scope: benchmarks compare one organization with others.
    Platform,
    /// The organization's benchmarks.
    Ready(Benchmarks),
    /// They could not be computed now (rate limit or error), with the reason to show.
    Unavailable(String),
}

fn bucket_name(b: SizeBucket) -> &'static str {
    match b {
        SizeBucket::One => "1 member",
        SizeBucket::TwoToFive => "2–5 members",
        SizeBucket::SixToTwenty => "6–20 members",
        SizeBucket::TwentyOneToHundred => "21–100 members",
        SizeBucket::OverHundred => "more than 100 members",
    }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::ViralCoefficient => "Viral coefficient K",
        Metric::InviteAcceptanceRate => "Invite acceptance rate",
        Metric::ActivationRate => "Activation rate",
        Metric::ShareConversion => "Share conversion",
    }
}

fn metric_key(m: Metric) -> &'static str {
    match m {
        Metric::ViralCoefficient => "k",
        Metric::InviteAcceptanceRate => "acceptance",
        Metric::ActivationRate => "activation",
        Metric::ShareConversion => "share",
    }
}

/// Why this organization has no value of its own.
fn no_value(m: Metric) -> &'static str {
    match m {
        Metric::ViralCoefficient => "no one joined in this window",
        Metric::InviteAcceptanceRate => "no invitations sent in this window",
        Metric::ActivationRate => "no invitations accepted in this window",
        Metric::ShareConversion => "no shared-link visitors in this window",
    }
}

fn shown(m: Metric, v: f64) -> String {
    match m {
        Metric::ViralCoefficient => format!("{v:.3}"),
        _ => format!("{:.1}%", 100.0 * v),
    }
}

fn row(b: &Benchmark) -> Markup {
    let m = b.metric;
    html! {
        tr id=(format!("benchmark-{}", metric_key(m))) data-available=(b.hidden.is_none()) {
            td { (metric_name(m)) }
            td.yours { @match b.value { Some(v) => (shown(m, v)), None => span.muted { "– (" (no_value(m)) ")" } } }
            @match b.hidden {
                None => {
                    td.median { (b.median.map(|v| shown(m, v)).unwrap_or_else(|| "–".into())) }
                    td.percentile { @match b.percentile {
                        Some(p) => (format!("{p:.1}")),
                        None => span.muted { "–" },
                    } }
                    td.contributors { (b.contributors) }
                }
                Some(Hidden::TooFewContributors) => {
                    td.hidden colspan="3" {
                        "Hidden: " (b.contributors) " other organization" @if b.contributors != 1 { "s" }
                        " of this size contribute; shown from " (MIN_OTHERS) "."
                    }
                }
                Some(Hidden::OptedOut) => { td.hidden colspan="3" { "Opted out" } }
            }
        }
    }
}

/// The panel.
pub fn panel(p: &Panel) -> Markup {
    html! {
        section.panel #panel-benchmarks {
            h2 { "Benchmarks" }
            @match p {
                Panel::Platform => p.empty #benchmarks-platform {
                    "Benchmarks compare one organization with organizations of its size; pick an organization above to see them."
                },
                Panel::Unavailable(why) => p.notice #benchmarks-unavailable role="status" {
                    "Benchmarks are not available right now: " (why)
                },
                Panel::Ready(b) if b.opted_out => p.empty #benchmarks-opted-out {
                    "This organization opted out of benchmarks: it does not contribute to them and sees none. "
                    "An admin or owner can opt back in with setBenchmarksOptOut(optOut: false)."
                },
                Panel::Ready(b) => {
                    p.muted #benchmarks-bucket data-bucket=(format!("{:?}", b.size_bucket)) {
                        "Compared with other organizations with " (bucket_name(b.size_bucket))
                        " over the same window (computed " (b.computed_at.format("%Y-%m-%d %H:%M UTC")) "). "
                        "The percentile is the share of them with a lower value, ties counting half. "
                        "No organization is named; a benchmark appears once at least " (MIN_OTHERS)
                        " other organizations contribute, and an organization without a value (nothing to divide by) does not."
                    }
                    @if b.metrics.iter().all(|m| m.hidden.is_some()) {
                        p.empty #benchmarks-empty {
                            "Not enough organizations of this size have numbers for this window yet. Try a longer range."
                        }
                    }
                    div.scroll { table {
                        thead { tr { th { "Metric" } th { "Yours" } th { "Median" } th title="Share of the other organizations with a lower value, ties counting half (0–100)" { "Percentile" } th { "Organizations" } } }
                        tbody { @for m in &b.metrics { (row(m)) } }
                    } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn bench(metric: Metric, value: Option<f64>, hidden: Option<Hidden>, n: usize) -> Benchmark {
        Benchmark {
            metric,
            value,
            hidden,
            contributors: n,
            percentile: hidden.is_none().then_some(75.0),
            median: hidden.is_none().then_some(0.25),
        }
    }

    #[test]
    fn hidden_and_shown_rows_say_why() {
        let b = Benchmarks {
            from: Utc::now(),
            to: Utc::now(),
            size_bucket: SizeBucket::TwoToFive,
            opted_out: false,
            computed_at: Utc::now(),
            metrics: vec![
                bench(Metric::ViralCoefficient, Some(0.5), None, 12),
                bench(
                    Metric::InviteAcceptanceRate,
                    None,
                    Some(Hidden::TooFewContributors),
                    9,
                ),
                bench(
                    Metric::ActivationRate,
                    Some(1.0),
                    Some(Hidden::TooFewContributors),
                    1,
                ),
                bench(Metric::ShareConversion, None, None, 30),
            ],
        };
        let html = panel(&Panel::Ready(b.clone())).into_string();
        assert!(html.contains("2–5 members"), "{html}");
        assert!(
            html.contains("0.500") && html.contains(">75.0<") && html.contains("0.250"),
            "{html}"
        );
        assert!(
            html.contains("Hidden: 9 other organizations of this size contribute; shown from 10.")
        );
        assert!(html.contains("Hidden: 1 other organization of this size"));
        assert!(html.contains("no invitations sent in this window"));
        assert!(
            html.contains("25.0%"),
            "share median as a percentage: {html}"
        );
        let out = panel(&Panel::Ready(Benchmarks {
            opted_out: true,
            ..b
        }))
        .into_string();
        assert!(out.contains("opted out of benchmarks"), "{out}");
        assert!(!out.contains("<table"));
        let p = panel(&Panel::Platform).into_string();
        assert!(p.contains("pick an organization"));
    }
}
