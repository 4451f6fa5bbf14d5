//! Cross-organization benchmarks on a hand-built set of organizations, every expected
//! percentile and median worked out by hand below: the 10-other-organizations floor, ties
//! counting half, size buckets, opting out, who may see them, and the cache equal to a
//! recomputation. Runs on SQLite and on PostgreSQL.
use chrono::{DateTime, Duration, Utc};
use entity::ids::InvitationId;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{json, Value};

use crate::{
    growth::no_limits,
    helpers::{
        browser::{attr_after, Browser},
        error_codes, spawn_with, user_error_codes, TestApp, TestUser,
    },
};

const FIELDS: &str = "sizeBucket optedOut computedAt from to
  viralCoefficient { ...B } inviteAcceptanceRate { ...B } activationRate { ...B } shareConversion { ...B }";
const FRAGMENT: &str = "fragment B on Benchmark { metric value available hiddenReason contributors minContributors percentile median }";

/// A Monday well in the past of the wall clock; every fact of these tests happens on it.
pub(crate) fn day0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// The window: the week of day 0.
fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    let from = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    (from, from + Duration::days(7))
}

/// The server of these tests: no rate limits, and no precompute worker. Its refreshes start
/// whenever the test clock moves and hold the one computation at a time, so which copy a
/// request is served (stale while another computes, or fresh) would depend on timing;
/// `benchmarks_precompute.rs` tests the worker.
pub(crate) async fn spawn() -> TestApp {
    spawn_with(|c| {
        no_limits(c);
        c.benchmarks_precompute = false;
    })
    .await
}

async fn benchmarks(app: &TestApp, who: &TestUser, org: &str) -> Value {
    let (from, to) = window();
    let q = format!(
        "query($o: ID!, $f: DateTime!, $t: DateTime!) {{ organization(id: $o) {{ name benchmarks(from: $f, to: $t) {{ {FIELDS} }} }} }} {FRAGMENT}"
    );
    app.gql(
        Some(&who.token),
        &q,
        json!({ "o": org, "f": from, "t": to }),
    )
    .await
}

async fn shown(app: &TestApp, who: &TestUser) -> Value {
    let body = benchmarks(app, who, &who.org_id).await;
    assert!(body.get("errors").is_none(), "{body}");
    let b = body["data"]["organization"]["benchmarks"].clone();
    // Nothing in an answer names another organization.
    let text = b.to_string();
    assert!(!text.contains("org_"), "an organization id leaked: {text}");
    b
}

fn close(v: &Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

pub(crate) fn org_id(id: &str) -> kfactor::domain::ids::OrgId {
    kfactor::domain::ids::OrgId::parse(id).unwrap()
}

pub(crate) fn user_id(id: &str) -> kfactor::domain::ids::UserId {
    kfactor::domain::ids::UserId::parse(id).unwrap()
}

/// The stored row of a test user (the domain calls take it as the caller).
pub(crate) async fn user_row(app: &TestApp, who: &TestUser) -> entity::users::Model {
    entity::users::Entity::find_by_id(user_id(&who.id))
        .one(&app.app.svc.db.read)
        .await
        .unwrap()
        .unwrap()
}

/// New facts: the first other organization's invitation is accepted on day 0 by an idle user
/// (so it now has an activation rate); the rollups are rebuilt from the facts.
pub(crate) async fn accept_one_of_the_first_others(
    app: &TestApp,
    others: &[TestUser],
    pool: &Pool,
) {
    let svc = &app.app.svc;
    let w = entity::invitations::Entity::find()
        .all(&svc.db.read)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.organization_id == org_id(&others[0].org_id))
        .unwrap();
    let mut am: entity::invitations::ActiveModel = w.into();
    am.first_accepted_at = Set(Some(day0()));
    am.first_accepted_by_user_id = Set(Some(user_id(&pool.idle.id)));
    am.update(&svc.db.write).await.unwrap();
    kfactor::domain::metrics::rebuild::rebuild(svc)
        .await
        .unwrap();
}

/// `sent` invitations first sent by `by` from `org` on day 0, the first `accepted` of them
/// accepted by `activated` users and then by `idle` ones (written as facts; the rollups are
/// rebuilt from the facts afterwards by [`settle`]).
async fn invitations(
    app: &TestApp,
    by: &TestUser,
    sent: usize,
    accepted: usize,
    activated: usize,
    pool: &Pool,
) {
    use entity::enums::{InvitationState, Role};
    for n in 0..sent {
        let acceptor = (n < accepted).then_some(if n < activated {
            &pool.activated
        } else {
            &pool.idle
        });
        let at = day0() + Duration::minutes(n as i64);
        entity::invitations::ActiveModel {
            id: Set(InvitationId::generate()),
            organization_id: Set(org_id(&by.org_id)),
            email: Set(format!("guest{n}-{}@bench.test", by.id)),
            role: Set(Role::Member),
            invited_by_user_id: Set(user_id(&by.id)),
            surface: Set(None),
            status: Set(if acceptor.is_some() {
                InvitationState::Accepted
            } else {
                InvitationState::Pending
            }),
            token_version: Set(1),
            team_invite: Set(false),
            created_at: Set(at),
            last_sent_at: Set(at),
            send_count: Set(1),
            expires_at: Set(at + Duration::days(7)),
            opened_at: Set(acceptor.map(|_| at)),
            accepted_at: Set(acceptor.map(|_| at)),
            accepted_by_user_id: Set(acceptor.map(|u| user_id(&u.id))),
            first_sent_by_user_id: Set(Some(user_id(&by.id))),
            first_opened_at: Set(acceptor.map(|_| at)),
            first_accepted_at: Set(acceptor.map(|_| at)),
            first_accepted_by_user_id: Set(acceptor.map(|u| user_id(&u.id))),
        }
        .insert(&app.app.svc.db.write)
        .await
        .unwrap();
    }
}

/// Users who accept invitations: one activated, one not.
pub(crate) struct Pool {
    pub(crate) activated: TestUser,
    pub(crate) idle: TestUser,
}

async fn pool(app: &TestApp) -> Pool {
    let activated = app.sign_up("Act", "act@pool.test").await;
    let idle = app.sign_up("Idle", "idle@pool.test").await;
    let u = entity::users::Entity::find_by_id(user_id(&activated.id))
        .one(&app.app.svc.db.write)
        .await
        .unwrap()
        .unwrap();
    let mut am: entity::users::ActiveModel = u.into();
    am.activated_at = Set(Some(day0()));
    am.update(&app.app.svc.db.write).await.unwrap();
    Pool { activated, idle }
}

/// The rollups again equal to the facts written directly, and every cached computation
/// dropped (the facts changed behind the domain's back).
async fn settle(app: &TestApp) {
    kfactor::domain::metrics::rebuild::rebuild(&app.app.svc)
        .await
        .unwrap();
    crate::growth::verify(app).await;
    app.app.svc.benchmarks.clear();
}

/// Ours plus eleven other one-member organizations, all created on day 0. Invitations
/// (sent, accepted, of those accepted by an activated user) and the rates they make:
///
/// | org  | sent | acc | act | acceptance | activation |
/// |------|------|-----|-----|------------|------------|
/// | o1   | 4    | 0   | 0   | 0          | –          |
/// | o2   | 4    | 1   | 1   | 0.25       | 1          |
/// | o3   | 4    | 1   | 0   | 0.25       | 0          |
/// | o4   | 4    | 1   | 0   | 0.25       | 0          |
/// | o5   | 4    | 2   | 1   | 0.5        | 0.5        |
/// | o6   | 4    | 3   | 3   | 0.75       | 1          |
/// | o7   | 4    | 3   | 1   | 0.75       | 1/3        |
/// | o8   | 1    | 1   | 1   | 1          | 1          |
/// | o9   | 2    | 2   | 0   | 1          | 0          |
/// | o10  | 3    | 3   | 2   | 1          | 2/3        |
/// | o11  | 1    | 1   | 1   | 1          | 1          |
/// | ours | 4    | 2   | 1   | 0.5        | 0.5        |
const OTHERS: [(usize, usize, usize); 11] = [
    (4, 0, 0),
    (4, 1, 1),
    (4, 1, 0),
    (4, 1, 0),
    (4, 2, 1),
    (4, 3, 3),
    (4, 3, 1),
    (1, 1, 1),
    (2, 2, 0),
    (3, 3, 2),
    (1, 1, 1),
];

pub(crate) async fn world(app: &TestApp) -> (TestUser, Vec<TestUser>, Pool) {
    app.clock.set(day0());
    let pool = pool(app).await;
    let ours = app.sign_up("Ours", "ours@bench.test").await;
    invitations(app, &ours, 4, 2, 1, &pool).await;
    let mut others = Vec::new();
    for (i, (sent, acc, act)) in OTHERS.iter().enumerate() {
        let o = app
            .sign_up(&format!("Other {i}"), &format!("other{i}@bench.test"))
            .await;
        invitations(app, &o, *sent, *acc, *act, &pool).await;
        others.push(o);
    }
    settle(app).await;
    app.clock.set(day0() + Duration::days(8));
    (ours, others, pool)
}

#[tokio::test]
async fn percentiles_and_medians_of_a_hand_built_set() {
    let app = spawn().await;
    let (ours, _others, _pool) = world(&app).await;
    let b = shown(&app, &ours).await;
    assert_eq!(b["sizeBucket"], "ONE");
    assert_eq!(b["optedOut"], false);

    // Acceptance, others sorted: 0, .25, .25, .25, .5, .75, .75, 1, 1, 1, 1 (11).
    // Ours 0.5: 4 lower, 1 equal → 100 × (4 + 1/2) / 11; median = the 6th = 0.75.
    let a = &b["inviteAcceptanceRate"];
    assert_eq!(a["metric"], "INVITE_ACCEPTANCE_RATE");
    assert_eq!(
        (a["available"].clone(), a["hiddenReason"].clone()),
        (json!(true), Value::Null),
        "{b}"
    );
    assert_eq!(a["contributors"], 11);
    assert_eq!(a["minContributors"], 10);
    close(&a["value"], 0.5);
    close(&a["percentile"], 100.0 * 4.5 / 11.0);
    close(&a["median"], 0.75);

    // Activation: o1 accepted none, so 10 others contribute: 0, 0, 0, 1/3, .5, 2/3, 1, 1, 1,
    // 1. Ours 0.5: 4 lower, 1 equal → 100 × 4.5 / 10 = 45; median = (.5 + 2/3) / 2 = 7/12.
    let act = &b["activationRate"];
    assert_eq!(act["available"], true, "{b}");
    assert_eq!(act["contributors"], 10);
    close(&act["value"], 0.5);
    close(&act["percentile"], 45.0);
    close(&act["median"], 7.0 / 12.0);

    // K: every one-member organization has a cohort of one and no conversion: ours and the
    // eleven others plus the two acceptors' own workspaces, all 0. Thirteen ties → 50.
    let k = &b["viralCoefficient"];
    assert_eq!(k["contributors"], 13, "{b}");
    close(&k["value"], 0.0);
    close(&k["percentile"], 50.0);
    close(&k["median"], 0.0);

    // Nobody had a visitor: no one contributes, ours has no value.
    let s = &b["shareConversion"];
    assert_eq!(s["value"], Value::Null);
    assert_eq!(s["contributors"], 0);
    assert_eq!(s["available"], false);
    assert_eq!(s["hiddenReason"], "TOO_FEW_CONTRIBUTORS");
    assert_eq!(
        (s["percentile"].clone(), s["median"].clone()),
        (Value::Null, Value::Null)
    );

    // The values are the organization's own growth numbers for the window.
    let (from, to) = window();
    let g = app
        .gql(
            Some(&ours.token),
            "query($o: ID!, $f: DateTime!, $t: DateTime!) { organization(id: $o) { growth(from: $f, to: $t) { viralCoefficient inviteFunnel { sent accepted activated } } } }",
            json!({ "o": ours.org_id, "f": from, "t": to }),
        )
        .await;
    let f = &g["data"]["organization"]["growth"]["inviteFunnel"];
    assert_eq!(
        (
            f["sent"].as_f64(),
            f["accepted"].as_f64(),
            f["activated"].as_f64()
        ),
        (Some(4.0), Some(2.0), Some(1.0)),
        "{g}"
    );
}

#[tokio::test]
async fn ten_others_are_shown_nine_are_hidden_and_opted_out_organizations_neither_count_nor_see() {
    let app = spawn().await;
    let (ours, others, _pool) = world(&app).await;
    let opt = |who: &TestUser, out: bool| {
        let (app, who) = (&app, who.clone());
        async move {
            let body = app
                .gql(
                    Some(&who.token),
                    "mutation($o: ID!, $x: Boolean!) { setBenchmarksOptOut(organizationId: $o, optOut: $x) { optedOut userErrors { code message } } }",
                    json!({ "o": who.org_id, "x": out }),
                )
                .await;
            let p = &body["data"]["setBenchmarksOptOut"];
            assert_eq!(p["userErrors"], json!([]), "{body}");
            assert_eq!(p["optedOut"], out);
        }
    };
    // o9 (acceptance 1, activation 0) opts out: activation has 9 others left, hidden;
    // acceptance 10, still shown.
    opt(&others[8], true).await;
    let b = shown(&app, &ours).await;
    let act = &b["activationRate"];
    assert_eq!(act["contributors"], 9, "{b}");
    assert_eq!(act["available"], false);
    assert_eq!(act["hiddenReason"], "TOO_FEW_CONTRIBUTORS");
    assert_eq!(act["percentile"], Value::Null);
    assert_eq!(act["median"], Value::Null);
    close(&act["value"], 0.5);
    let a = &b["inviteAcceptanceRate"];
    assert_eq!(a["contributors"], 10);
    assert_eq!(a["available"], true);
    // Others: 0, .25, .25, .25, .5, .75, .75, 1, 1, 1 → 100 × (4 + 1/2) / 10; median
    // (.5 + .75) / 2.
    close(&a["percentile"], 45.0);
    close(&a["median"], 0.625);

    // The opted-out organization sees none.
    let mine = shown(&app, &others[8]).await;
    assert_eq!(mine["optedOut"], true);
    for m in [
        "viralCoefficient",
        "inviteAcceptanceRate",
        "activationRate",
        "shareConversion",
    ] {
        assert_eq!(mine[m]["hiddenReason"], "OPTED_OUT", "{mine}");
        assert_eq!(mine[m]["available"], false);
        assert_eq!(mine[m]["contributors"], 0);
        assert_eq!(mine[m]["median"], Value::Null);
        assert_eq!(mine[m]["percentile"], Value::Null);
    }
    close(&mine["inviteAcceptanceRate"]["value"], 1.0);

    // o8 too: acceptance is down to 9 others.
    opt(&others[7], true).await;
    let b = shown(&app, &ours).await;
    assert_eq!(b["inviteAcceptanceRate"]["contributors"], 9);
    assert_eq!(
        b["inviteAcceptanceRate"]["hiddenReason"],
        "TOO_FEW_CONTRIBUTORS"
    );
    // Back in: both count again.
    opt(&others[7], false).await;
    opt(&others[8], false).await;
    let b = shown(&app, &ours).await;
    assert_eq!(b["inviteAcceptanceRate"]["contributors"], 11);
    assert_eq!(b["activationRate"]["contributors"], 10);
    assert_eq!(b["activationRate"]["available"], true);
}

#[tokio::test]
async fn size_buckets_compare_organizations_of_similar_size_only() {
    let app = spawn().await;
    let (ours, others, pool) = world(&app).await;
    // Ours grows to two members: the eleven one-member organizations are another bucket.
    app.add_member(&ours.org_id, &pool.idle.id, "member").await;
    settle(&app).await;
    let b = shown(&app, &ours).await;
    assert_eq!(b["sizeBucket"], "TWO_TO_FIVE");
    assert_eq!(b["inviteAcceptanceRate"]["contributors"], 0, "{b}");
    assert_eq!(
        b["inviteAcceptanceRate"]["hiddenReason"],
        "TOO_FEW_CONTRIBUTORS"
    );
    // Five members is still 2–5, six is 6–20.
    let extra: Vec<TestUser> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(
                app.sign_up(&format!("M{i}"), &format!("m{i}@bench.test"))
                    .await,
            );
        }
        v
    };
    for u in &extra[..3] {
        app.add_member(&ours.org_id, &u.id, "member").await;
    }
    app.app.svc.benchmarks.clear();
    assert_eq!(shown(&app, &ours).await["sizeBucket"], "TWO_TO_FIVE");
    app.add_member(&ours.org_id, &extra[3].id, "member").await;
    app.app.svc.benchmarks.clear();
    assert_eq!(shown(&app, &ours).await["sizeBucket"], "SIX_TO_TWENTY");
    // A one-member organization still sees the others of its size (ours left that bucket:
    // o1's acceptance compares with ten others now).
    let o1 = shown(&app, &others[0]).await;
    assert_eq!(o1["sizeBucket"], "ONE");
    assert_eq!(o1["inviteAcceptanceRate"]["contributors"], 10, "{o1}");
    // o1's 0 against .25, .25, .25, .5, .75, .75, 1, 1, 1, 1: none lower, none equal.
    close(&o1["inviteAcceptanceRate"]["percentile"], 0.0);
}

#[tokio::test]
async fn members_and_other_organizations_are_refused() {
    let app = spawn().await;
    let (ours, others, pool) = world(&app).await;
    app.add_member(&ours.org_id, &pool.idle.id, "member").await;
    let body = benchmarks(&app, &pool.idle, &ours.org_id).await;
    assert_eq!(
        body["data"]["organization"]["name"], "Ours's workspace",
        "{body}"
    );
    assert_eq!(body["data"]["organization"]["benchmarks"], Value::Null);
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    assert_eq!(
        body["errors"][0]["path"],
        json!(["organization", "benchmarks"])
    );
    let m = "mutation($o: ID!) { setBenchmarksOptOut(organizationId: $o, optOut: true) { optedOut userErrors { code } } }";
    let body = app
        .gql(Some(&pool.idle.token), m, json!({ "o": ours.org_id }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["setBenchmarksOptOut"]),
        ["PERMISSION_DENIED"],
        "{body}"
    );

    // Another organization's id: refused as the rest of the API refuses it.
    let body = benchmarks(&app, &ours, &others[0].org_id).await;
    assert_eq!(body["data"]["organization"], Value::Null, "{body}");
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    let body = app
        .gql(Some(&ours.token), m, json!({ "o": others[0].org_id }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["setBenchmarksOptOut"]),
        ["PERMISSION_DENIED"],
        "{body}"
    );
    // o1 was not opted out by the refused call: o2 still counts it among its ten others
    // (ours has two members now, another bucket).
    let b = shown(&app, &others[1]).await;
    assert_eq!(b["inviteAcceptanceRate"]["contributors"], 10, "{b}");
    // Guests and bad windows.
    let body = app
        .gql(None, "query($o: ID!) { organization(id: $o) { benchmarks(from: \"2026-03-02T00:00:00Z\", to: \"2026-03-01T00:00:00Z\") { optedOut } } }", json!({ "o": ours.org_id }))
        .await;
    assert_eq!(error_codes(&body), ["UNAUTHENTICATED"]);
    let body = app
        .gql(Some(&ours.token), "query($o: ID!) { organization(id: $o) { benchmarks(from: \"2026-03-02T00:00:00Z\", to: \"2026-03-01T00:00:00Z\") { optedOut } } }", json!({ "o": ours.org_id }))
        .await;
    assert_eq!(error_codes(&body), ["INVALID_INPUT"], "{body}");
}

#[tokio::test]
async fn a_cached_answer_equals_a_recomputation_until_it_expires() {
    use kfactor::domain::{access::Caller, benchmarks, ids::OrgId};
    let app = spawn().await;
    let (ours, others, pool) = world(&app).await;
    let svc = &app.app.svc;
    let user = user_row(&app, &ours).await;
    let org = OrgId::parse(&ours.org_id).unwrap();
    let (from, to) = window();
    let first = benchmarks::for_org(svc, Caller::User(&user), org, from, to)
        .await
        .unwrap();
    app.clock.advance(Duration::seconds(10));
    let cached = benchmarks::for_org(svc, Caller::User(&user), org, from, to)
        .await
        .unwrap();
    let fresh = benchmarks::recompute(svc, Caller::User(&user), org, from, to)
        .await
        .unwrap();
    assert_eq!(cached, first, "served from the cache");
    assert_eq!(
        fresh.computed_at,
        cached.computed_at + Duration::seconds(10)
    );
    assert_eq!(
        benchmarks::Benchmarks {
            computed_at: cached.computed_at,
            ..fresh
        },
        cached
    );

    // New facts: o1 gets an acceptance. The cache serves the old answer until it expires
    // (KFACTOR_BENCHMARKS_CACHE_SECONDS, 300 by default), then equals a recomputation.
    accept_one_of_the_first_others(&app, &others, &pool).await;
    let stale = benchmarks::for_org(svc, Caller::User(&user), org, from, to)
        .await
        .unwrap();
    assert_eq!(stale, first);
    let fresh = benchmarks::recompute(svc, Caller::User(&user), org, from, to)
        .await
        .unwrap();
    assert_ne!(
        fresh.metrics, first.metrics,
        "o1 now contributes an activation rate"
    );
    app.clock.advance(Duration::seconds(300));
    let renewed = benchmarks::for_org(svc, Caller::User(&user), org, from, to)
        .await
        .unwrap();
    assert!(renewed.computed_at > first.computed_at);
    assert_eq!(renewed.metrics, fresh.metrics);
    assert_eq!(renewed.metrics[2].contributors, 11);
}

/// The dashboard's panel shows the API's benchmarks for the window it names, says why a row
/// is hidden, and says so when the organization opted out.
#[tokio::test]
async fn the_dashboard_panel_shows_the_window_benchmarks_and_why_rows_are_hidden() {
    let app = spawn().await;
    let (ours, _others, _pool) = world(&app).await;
    let mut b = Browser::new(&app);
    b.log_in(&ours.email, crate::accounts::PASSWORD).await;
    let page = format!(
        "/dashboard?org={}&range=custom&from=2026-03-02&to=2026-03-08",
        ours.org_id
    );
    let (status, html, _) = b.get(&page).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"panel-benchmarks\""), "{html}");
    assert!(html.contains("other organizations with 1 member"), "{html}");
    let row = |html: &str, key: &str| {
        let at = html
            .find(&format!("id=\"benchmark-{key}\""))
            .unwrap_or_else(|| panic!("no row {key}"));
        let end = at + html[at..].find("</tr>").unwrap();
        html[at..end].to_string()
    };
    assert_eq!(
        attr_after(&html, "id=\"benchmark-acceptance\"", "data-available").as_deref(),
        Some("true")
    );
    // The API's numbers: 50.0% ours, median 75.0%, percentile 100 × 4.5 / 11 = 40.9.
    let acceptance = row(&html, "acceptance");
    for want in ["50.0%", "75.0%", "40.9", ">11<"] {
        assert!(acceptance.contains(want), "{want} in {acceptance}");
    }
    let share = row(&html, "share");
    assert!(
        share.contains("no shared-link visitors in this window"),
        "{share}"
    );
    assert!(
        share.contains("Hidden: 0 other organizations of this size contribute; shown from 10."),
        "{share}"
    );

    let body = app
        .gql(
            Some(&ours.token),
            "mutation($o: ID!) { setBenchmarksOptOut(organizationId: $o, optOut: true) { optedOut userErrors { code } } }",
            json!({ "o": ours.org_id }),
        )
        .await;
    assert_eq!(
        body["data"]["setBenchmarksOptOut"]["optedOut"], true,
        "{body}"
    );
    let (_, html, _) = b.get(&page).await;
    assert!(html.contains("id=\"benchmarks-opted-out\""), "{html}");
    assert!(!html.contains("id=\"benchmark-acceptance\""));
}

#[tokio::test]
async fn answers_and_opt_out_changes_draw_on_one_budget_per_organization() {
    let app = spawn_with(|c| {
        no_limits(c);
        c.benchmarks_precompute = false;
        c.safety.benchmarks_per_org = Some(kfactor::config::Rate::new(
            3,
            std::time::Duration::from_secs(600),
        ));
    })
    .await;
    let ours = app.sign_up("Ours", "ours@example.com").await;
    let other = app.sign_up("Other", "other@example.com").await;
    let m = "mutation($o: ID!, $x: Boolean!) { setBenchmarksOptOut(organizationId: $o, optOut: $x) { optedOut userErrors { code } } }";
    // A refusal may come as a top-level error or as a userError: both count.
    let codes = |body: &Value| {
        let mut c = error_codes(body);
        if body["data"]["setBenchmarksOptOut"]["userErrors"].is_array() {
            c.extend(user_error_codes(&body["data"]["setBenchmarksOptOut"]));
        }
        c
    };
    // An outsider's refused calls spend nothing of ours.
    for _ in 0..4 {
        let body = benchmarks(&app, &other, &ours.org_id).await;
        assert_eq!(error_codes(&body), ["FORBIDDEN"], "{body}");
    }
    // Two answers and one change: the budget of three.
    for _ in 0..2 {
        let body = benchmarks(&app, &ours, &ours.org_id).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let body = app
        .gql(Some(&ours.token), m, json!({ "o": ours.org_id, "x": true }))
        .await;
    assert!(codes(&body).is_empty(), "{body}");
    assert_eq!(body["data"]["setBenchmarksOptOut"]["optedOut"], true);
    // Spent: the next change is refused (429) and does not happen, and so is the next answer.
    let (status, body) = app
        .post(
            Some(&ours.token),
            m,
            json!({ "o": ours.org_id, "x": false }),
        )
        .await;
    assert_eq!(
        (status, codes(&body)),
        (429, vec!["RATE_LIMITED".to_string()]),
        "{body}"
    );
    // The answer is refused as a field error: the rest of the query is still answered.
    let body = benchmarks(&app, &ours, &ours.org_id).await;
    assert_eq!(error_codes(&body), ["RATE_LIMITED"], "{body}");
    assert_eq!(body["data"]["organization"]["name"], "Ours's workspace");
    let row = entity::benchmark_opt_outs::Entity::find_by_id(org_id(&ours.org_id))
        .one(&app.app.svc.db.write)
        .await
        .unwrap();
    assert!(row.is_some(), "the refused change still happened");
    // Another organization's budget is its own.
    let b = shown(&app, &other).await;
    assert_eq!(b["optedOut"], false, "{b}");
}
