//! Server-rendered inline SVG charts: no script, no CDN. Every chart has a title, axis
//! labels, a tooltip (`<title>`) on every mark and a table of the exact numbers; the
//! palette is viridis, whose lightness rises monotonically, so series stay apart in
//! greyscale.
use maud::{html, Markup, PreEscaped};

/// Viridis at five steps: dark to light.
pub const PALETTE: [&str; 5] = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];

const W: f64 = 640.0;
const H: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 44.0;

/// A round upper bound for the y axis.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= max {
            return step * mag;
        }
    }
    10.0 * mag
}

fn fmt_tick(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Axes, grid lines, tick labels and axis titles around a plot of `n` categories.
fn frame(labels: &[String], y_max: f64, x_title: &str, y_title: &str) -> Markup {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(1);
    // At most ~8 x labels so they never overlap.
    let every = n.div_ceil(8);
    html! {
        @for i in 0..=4 {
            @let v = y_max * i as f64 / 4.0;
            @let y = TOP + plot_h - plot_h * i as f64 / 4.0;
            line x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) stroke="#d8dae3" stroke-width="1" {}
            text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#445" { (fmt_tick(v)) }
        }
        @for (i, l) in labels.iter().enumerate() {
            @if i % every == 0 {
                @let x = LEFT + plot_w * (i as f64 + 0.5) / n as f64;
                text x=(x) y=(TOP + plot_h + 16.0) text-anchor="middle" font-size="11" fill="#445" { (l) }
            }
        }
        line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(TOP + plot_h) stroke="#445" {}
        line x1=(LEFT) x2=(W - RIGHT) y1=(TOP + plot_h) y2=(TOP + plot_h) stroke="#445" {}
        text x=(LEFT + plot_w / 2.0) y=(H - 6.0) text-anchor="middle" font-size="12" fill="#223" { (x_title) }
        text x="14" y=(TOP + plot_h / 2.0) text-anchor="middle" font-size="12" fill="#223"
            transform=(format!("rotate(-90 14 {})", TOP + plot_h / 2.0)) { (y_title) }
    }
}

fn svg(id: &str, title: &str, body: Markup) -> Markup {
    html! {
        svg id=(id) viewBox=(format!("0 0 {W} {H}")) width="100%" role="img" aria-labelledby=(format!("{id}-title"))
            preserveAspectRatio="xMidYMid meet" style="max-width:100%;height:auto;display:block" {
            title id=(format!("{id}-title")) { (title) }
            (body)
        }
    }
}

/// One value per category as a line with a marker per point.
pub fn line(
    id: &str,
    title: &str,
    labels: &[String],
    values: &[f64],
    x_title: &str,
    y_title: &str,
    show: impl Fn(f64) -> String,
) -> Markup {
    let y_max = nice_max(values.iter().cloned().fold(0.0, f64::max));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = values.len().max(1) as f64;
    let pt = |i: usize, v: f64| {
        (
            LEFT + plot_w * (i as f64 + 0.5) / n,
            TOP + plot_h - plot_h * (v / y_max).clamp(0.0, 1.0),
        )
    };
    let path: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = pt(i, *v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    svg(
        id,
        title,
        html! {
            (frame(labels, y_max, x_title, y_title))
            polyline points=(path.join(" ")) fill="none" stroke=(PALETTE[1]) stroke-width="2.5" {}
            @for (i, v) in values.iter().enumerate() {
                @let (x, y) = pt(i, *v);
                circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="4" fill=(PALETTE[0]) stroke="#fff" stroke-width="1.5" {
                    title { (labels.get(i).map(String::as_str).unwrap_or("")) ": " (show(*v)) }
                }
            }
        },
    )
}

/// Stacked bars: one bar per category, one segment per series (name, values).
pub fn stacked(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[(&str, Vec<i64>)],
    x_title: &str,
    y_title: &str,
) -> Markup {
    let totals: Vec<i64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let y_max = nice_max(totals.iter().copied().max().unwrap_or(0) as f64);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(1) as f64;
    let bar = (plot_w / n * 0.7).max(1.0);
    let mut rects = String::new();
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + plot_w * (i as f64 + 0.5) / n - bar / 2.0;
        let mut base = 0i64;
        for (s, (name, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let y0 = TOP + plot_h - plot_h * base as f64 / y_max;
            let y1 = TOP + plot_h - plot_h * (base + v) as f64 / y_max;
            base += v;
            rects.push_str(
                &html! {
                    rect x=(format!("{x:.1}")) y=(format!("{y1:.1}")) width=(format!("{bar:.1}")) height=(format!("{:.1}", y0 - y1))
                        fill=(PALETTE[s % PALETTE.len()]) stroke="#fff" stroke-width="0.75" {
                        title { (label) " · " (name) ": " (v) }
                    }
                }
                .into_string(),
            );
        }
    }
    html! {
        (svg(id, title, html! { (frame(labels, y_max, x_title, y_title)) (PreEscaped(rects)) }))
        p.legend {
            @for (s, (name, _)) in series.iter().enumerate() {
                span { i style=(format!("background:{}", PALETTE[s % PALETTE.len()])) {} (name) }
            }
        }
    }
}

/// A funnel as horizontal bars: each step with its count and, where the step is a subset
/// of the one before (the flag), the conversion from it.
pub fn funnel(id: &str, title: &str, steps: &[(&str, i64, bool)]) -> Markup {
    // Scaled to the largest step: a share funnel's visits outnumber the links they open.
    let first = steps.iter().map(|s| s.1).max().unwrap_or(0).max(1) as f64;
    let row = 34.0;
    let h = TOP + row * steps.len() as f64 + 8.0;
    let label_w = 130.0;
    let bar_w = W - label_w - 150.0;
    html! {
        svg id=(id) viewBox=(format!("0 0 {W} {h}")) width="100%" role="img" aria-labelledby=(format!("{id}-title")) style="max-width:100%;height:auto;display:block" {
            title id=(format!("{id}-title")) { (title) }
            @for (i, (name, v, converts)) in steps.iter().enumerate() {
                @let y = TOP + row * i as f64;
                @let w = (bar_w * (*v as f64 / first)).max(if *v > 0 { 2.0 } else { 0.0 });
                @let step = (i > 0 && *converts).then(|| pct(*v, steps[i - 1].1));
                text x="0" y=(y + 18.0) font-size="13" fill="#223" { (name) }
                rect x=(label_w) y=(y + 4.0) width=(format!("{w:.1}")) height="20" rx="3" fill=(PALETTE[i.min(4)]) stroke="#445" stroke-width="0.5" {
                    title { (name) ": " (v) @if let Some(p) = &step { " (" (p) " of the step before)" } }
                }
                text x=(label_w + w + 8.0) y=(y + 18.0) font-size="13" fill="#223" {
                    (v) @if let Some(p) = &step { " · " (p) }
                }
            }
        }
    }
}

/// `a / b` as a percentage with one decimal, "–" when `b` is 0.
pub fn pct(a: i64, b: i64) -> String {
    if b == 0 {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers_and_percentages_survive_zero() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.37), 0.5);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(pct(1, 3), "33.3%");
        assert_eq!(pct(1, 0), "–");
        let svg = line("k", "K per week", &["a".into()], &[0.5], "Week", "K", |v| {
            format!("{v:.3}")
        })
        .into_string();
        assert!(svg.contains("<title id=\"k-title\">K per week</title>"));
        assert!(svg.contains("a: 0.500"), "{svg}");
    }
}
