//! `GET /dashboard` and `GET /dashboard.csv`: the growth numbers of an organization (or the
//! platform, for staff) as tiles, inline-SVG charts and tables, from the same domain
//! functions as `Organization.growth` / `Query.growth`.
use axum::{
    extract::{Extension, Query, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use super::{
    browser::{self, Csrf},
    dashboard_benchmarks::Panel,
    pages::internal,
    AppState,
};
use crate::{
    config::urlencode,
    domain::{
        access::Caller,
        benchmarks,
        dashboard::{self, Choice, Dashboard, Range, PRESET_WEEKS},
        ids::OrgId,
        metrics::{Counts, Growth, Question, Scope, SOURCES},
        ratelimit, DomainError, Services,
    },
};

/// The controls of the dashboard (all optional).
#[derive(Deserialize, Default, Clone)]
pub struct DashQuery {
    /// `org_…` or `platform`.
    org: Option<String>,
    /// `4w`, `12w`, `26w`, `52w` or `custom`.
    range: Option<String>,
    /// Custom range: first day, `YYYY-MM-DD`.
    from: Option<String>,
    /// Custom range: last day (inclusive), `YYYY-MM-DD`.
    to: Option<String>,
    /// `day`, `week` or `month`.
    interval: Option<String>,
}

fn scope_key(s: Scope) -> String {
    match s {
        Scope::Platform => "platform".into(),
        Scope::Organization(o) => o.to_string(),
    }
}

/// What a request resolved to, or the page that says why not.
struct Resolved {
    user: crate::domain::records::User,
    choices: Vec<Choice>,
    scope: Scope,
    range: Range,
    question: Question,
}

#[allow(clippy::result_large_err)]
async fn resolve(
    svc: &Services,
    headers: &HeaderMap,
    raw: Option<&str>,
    q: &DashQuery,
) -> Result<Resolved, Response> {
    let Some((user, _)) = browser::signed_in(svc, headers).await else {
        let here = match raw {
            Some(r) if !r.is_empty() => format!("/dashboard?{r}"),
            _ => "/dashboard".into(),
        };
        return Err(Redirect::to(&format!("/login?next={}", urlencode(&here))).into_response());
    };
    ratelimit::dashboard(svc, user.id).map_err(internal)?;
    let choices = dashboard::choices(svc, &user).await.map_err(internal)?;
    let picked = match q.org.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
        Some("platform") => Some(Scope::Platform),
        Some(o) => match OrgId::parse(o) {
            Ok(id) => Some(Scope::Organization(id)),
            Err(_) => {
                return Err(refusal(
                    &user,
                    StatusCode::NOT_FOUND,
                    "There is no such organization.",
                ))
            }
        },
        None => None,
    };
    let scope = match picked {
        Some(s) if choices.iter().any(|c| c.scope == s) => s,
        Some(_) => {
            return Err(refusal(
                &user,
                StatusCode::FORBIDDEN,
                "Only the organization's ADMINs and OWNERs (and platform staff) see its growth dashboard.",
            ))
        }
        None => {
            let active = user.active_organization_id.map(Scope::Organization);
            match choices.iter().find(|c| Some(c.scope) == active).or(choices.first()) {
                Some(c) => c.scope,
                None => {
                    return Err(refusal(
                        &user,
                        StatusCode::OK,
                        "You are not an ADMIN or OWNER of any organization yet. Ask an owner of your team to make you an admin, or invite someone to your own workspace from the app: its numbers will show up here.",
                    ))
                }
            }
        }
    };
    let parsed = Range::parse(q.range.as_deref(), q.from.as_deref(), q.to.as_deref())
        .and_then(|r| Ok((r, dashboard::parse_interval(q.interval.as_deref())?)));
    let (range, interval) =
        parsed.map_err(|e| refusal(&user, StatusCode::BAD_REQUEST, &e.to_string()))?;
    let (from, to) = range.window(svc.now());
    Ok(Resolved {
        user,
        choices,
        scope,
        range,
        question: Question { from, to, interval },
    })
}

/// A dashboard page with a message instead of numbers.
fn refusal(user: &crate::domain::records::User, status: StatusCode, text: &str) -> Response {
    (
        status,
        layout(
            "Growth dashboard",
            html! {
                (header_bar(user, None))
                p.notice role="alert" { (text) }
                p { a href="/dashboard" { "Back to the dashboard" } }
            },
        ),
    )
        .into_response()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `GET /dashboard`.
pub async fn page(
    State(app): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(q): Query<DashQuery>,
) -> Response {
    let svc = &app.svc;
    let r = match resolve(svc, &headers, raw.as_deref(), &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let data = match dashboard::load(svc, &r.user, r.scope, r.question).await {
        Ok(d) => d,
        Err(e @ DomainError::InvalidInput { .. }) => {
            return refusal(&r.user, StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e) => return internal(e),
    };
    let bench = match r.scope {
        Scope::Platform => Panel::Platform,
        Scope::Organization(org) => match benchmarks::for_org(
            svc,
            Caller::User(&r.user),
            org,
            r.question.from,
            r.question.to,
        )
        .await
        {
            Ok(b) => Panel::Ready(b),
            Err(e @ (DomainError::RateLimited { .. } | DomainError::InvalidInput { .. })) => {
                Panel::Unavailable(e.to_string())
            }
            Err(e) => {
                tracing::error!(error = %e, "dashboard benchmarks");
                Panel::Unavailable("they could not be computed; try again in a moment.".into())
            }
        },
    };
    let name = r
        .choices
        .iter()
        .find(|c| c.scope == r.scope)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let logout = html! {
        form method="post" action="/logout" style="display:inline" {
            input type="hidden" name="csrf" value=(csrf.token(svc));
            button.link type="submit" { "Sign out" }
        }
    };
    layout(
        &format!("Growth · {name}"),
        html! {
            (header_bar(&r.user, Some(logout)))
            (controls(&r))
            (super::dashboard_view::body(&r.scope_key(), &name, &r.question, &data))
            (super::dashboard_benchmarks::panel(&bench))
        },
    )
    .into_response()
}

impl Resolved {
    fn scope_key(&self) -> String {
        scope_key(self.scope)
    }
}

fn header_bar(user: &crate::domain::records::User, logout: Option<Markup>) -> Markup {
    html! {
        header.bar {
            strong { "kfactor · Growth" }
            span.muted { "Signed in as " (user.email) " " @if let Some(l) = logout { (l) } }
        }
    }
}

fn controls(r: &Resolved) -> Markup {
    let (from, to) = (r.question.from, r.question.to);
    let last_day = (to - chrono::Duration::days(1)).date_naive();
    let interval = r.question.interval.name().to_ascii_lowercase();
    html! {
        form #controls method="get" action="/dashboard" {
            label { "Scope "
                select name="org" {
                    @for c in &r.choices {
                        option value=(scope_key(c.scope)) selected[c.scope == r.scope] { (c.name) }
                    }
                }
            }
            label { "Range "
                select name="range" {
                    @for w in PRESET_WEEKS {
                        option value=(format!("{w}w")) selected[r.range == Range::Weeks(w)] { "Last " (w) " weeks" }
                    }
                    option value="custom" selected[matches!(r.range, Range::Custom { .. })] { "Custom dates" }
                }
            }
            label { "From " input type="date" name="from" value=(from.date_naive().format("%Y-%m-%d")); }
            label { "To " input type="date" name="to" value=(last_day.format("%Y-%m-%d")); }
            label { "Interval "
                select name="interval" {
                    @for i in ["day", "week", "month"] {
                        option value=(i) selected[interval == i] { (i) }
                    }
                }
            }
            button type="submit" { "Show" }
            " "
            a href=(format!("/dashboard.csv?org={}&range={}&from={}&to={}&interval={interval}",
                urlencode(&r.scope_key()), r.range.key(), from.date_naive(), last_day)) { "Download CSV" }
        }
        p #window.muted {
            "Window (UTC, end exclusive): "
            time #window-from datetime=(iso(from)) { (iso(from)) }
            " to "
            time #window-to datetime=(iso(to)) { (iso(to)) }
            ", by " span #window-interval { (r.question.interval.name()) }
            " · compared with the " (r.range_len_days()) " days before."
        }
    }
}

impl Resolved {
    fn range_len_days(&self) -> i64 {
        (self.question.to - self.question.from).num_days()
    }
}

/// The CSV of a series: one row per bucket.
pub fn series_csv(g: &Growth) -> Option<String> {
    let series = g.series.as_ref()?;
    let mut out = String::from("period_start,signups");
    for s in SOURCES {
        out.push_str(&format!(",signups_{}", s.as_str()));
    }
    out.push_str(",cohort_invitations,cohort_conversions,invitations_per_user,invitation_conversion_rate,viral_coefficient,share_coefficient,invitations_sent,invitations_opened,invitations_accepted,invitations_activated\n");
    for p in series {
        let c: &Counts = &p.counts;
        out.push_str(&iso(p.period_start));
        out.push_str(&format!(",{}", c.signups()));
        for v in c.by_source {
            out.push_str(&format!(",{v}"));
        }
        out.push_str(&format!(
            ",{},{},{},{},{},{},{},{},{},{}\n",
            c.cohort_invitations,
            c.cohort_conversions,
            c.invitations_per_user(),
            c.conversion_rate(),
            c.viral_coefficient(),
            c.share_coefficient(),
            c.sent,
            c.opened,
            c.accepted,
            c.activated
        ));
    }
    Some(out)
}

/// `GET /dashboard.csv`: the series of the same window as a download.
pub async fn csv(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(q): Query<DashQuery>,
) -> Response {
    let svc = &app.svc;
    let r = match resolve(svc, &headers, raw.as_deref(), &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let data: Dashboard = match dashboard::load(svc, &r.user, r.scope, r.question).await {
        Ok(d) => d,
        Err(e @ DomainError::InvalidInput { .. }) => {
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e) => return internal(e),
    };
    match series_csv(&data.current) {
        Some(body) => {
            let file = format!(
                "growth-{}-{}-{}.csv",
                r.scope_key(),
                r.question.from.date_naive(),
                (r.question.to - chrono::Duration::days(1)).date_naive()
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file}\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        None => {
            let why = data
                .current
                .upgrade
                .map(|u| format!("{} Upgrade: {}", u.message, u.url))
                .unwrap_or_else(|| "The series is not part of this organization's plan.".into());
            (StatusCode::FORBIDDEN, why).into_response()
        }
    }
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;background:#f4f5f9;color:#1f2330;margin:0}
main{max-width:1200px;margin:0 auto;padding:1rem 1.25rem 3rem}
.bar{display:flex;justify-content:space-between;flex-wrap:wrap;gap:.5rem;padding:.6rem 0;border-bottom:1px solid #dde}
.muted{color:#556}.notice{background:#fff6db;border:1px solid #e8d48a;padding:.7rem 1rem;border-radius:8px}
form #controls{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:end;margin:1rem 0 .3rem}
form #controls label{display:flex;flex-direction:column;font-size:.8rem;font-weight:600;color:#334}
select,input{font:inherit;padding:.35rem .4rem;border:1px solid #bbc;border-radius:6px;background:#fff}
button{font:inherit;padding:.4rem .9rem;background:#3b528b;color:#fff;border:0;border-radius:6px;cursor:pointer}
button.link{background:none;color:#3b528b;padding:0;text-decoration:underline}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:.75rem;margin:1rem 0}
.tile{background:#fff;border-radius:10px;padding:.8rem 1rem;box-shadow:0 1px 4px #0001}
.tile .label{font-size:.8rem;color:#445;font-weight:600}.tile .value{font-size:1.7rem;font-weight:700;display:block}
.tile .delta{font-size:.8rem;color:#445}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));gap:1rem}
section.panel{background:#fff;border-radius:10px;padding:1rem 1.2rem;box-shadow:0 1px 4px #0001;min-width:0}
section.panel h2{font-size:1.05rem;margin:.1rem 0 .6rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;font-variant-numeric:tabular-nums}
th,td{text-align:right;padding:.25rem .45rem;border-bottom:1px solid #eef}th:first-child,td:first-child{text-align:left}
.scroll{overflow-x:auto}details{margin-top:.5rem}summary{cursor:pointer;color:#3b528b}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.8rem;margin:.3rem 0}
.legend i{display:inline-block;width:.9rem;height:.9rem;border:1px solid #445;margin-right:.3rem;vertical-align:-2px}
.upgrade{background:#eef0fb;border:1px dashed #3b528b;border-radius:8px;padding:.8rem 1rem}
.empty{color:#445;background:#f7f7fb;border-radius:8px;padding:.8rem 1rem}
@media (max-width:600px){.tile .value{font-size:1.35rem}main{padding:.5rem .6rem 2rem}}";

/// The dashboard's page shell (wider than the other pages).
fn layout(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (PreEscaped(CSS)) }
                }
                body { main { (body) } }
            }
        }
        .into_string(),
    )
}
