//! Growth metrics (METRICS.md), every expected number worked out by hand in the test, with the
//! injected clock placing each fact in time. Runs on SQLite and on PostgreSQL.
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{error_codes, spawn_with, TestApp, TestUser};

const PASSWORD: &str = "correct horse battery";

/// These tests move the clock back and forth across months; the public doors' rate limits
/// (tested in `limits`) would see time run backwards, so they are off here.
pub(crate) fn no_limits(c: &mut kfactor::config::Config) {
    let s = &mut c.safety;
    s.login_failures_per_address = None;
    s.login_failures_per_ip = None;
    s.signups_per_ip = None;
    s.signups_per_address = None;
    s.verification_emails_per_address = None;
    s.verification_emails_per_ip = None;
    s.public_lookups_per_ip = None;
    s.visitor_ids_per_ip = None;
}

async fn spawn() -> TestApp {
    spawn_with(no_limits).await
}

/// Every field of GrowthMetrics.
const ALL: &str = "from to signups signupsBySource { source signups } cohortSize invitationsSent
  invitationsPerUser invitationConversionRate viralCoefficient shareCoefficient amplification
  inviteFunnel { sent opened accepted activated }
  shareFunnel { linksCreated visits uniqueVisitors signups conversionRate }
  topInviters(limit: 5) { user { id name } invitationsSent accepted }
  surfaces { surface invitationsSent sharesCreated viralSignups }
  series { periodStart signups signupsBySource { source signups } viralSignups invitationsSent invitationsAccepted viralCoefficient }
  medianViralCycleHours complete upgrade { feature plan { key } url }";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A Monday, well in the past of the wall clock.
const DAY0: &str = "2026-03-02T09:00:00Z";

fn day(n: i64) -> DateTime<Utc> {
    t(DAY0) + Duration::days(n)
}

struct Growth<'a> {
    app: &'a TestApp,
    staff: TestUser,
}

impl<'a> Growth<'a> {
    /// A staff member who signed up well before any window of the test.
    async fn new(app: &'a TestApp) -> Growth<'a> {
        app.clock.set(day(-200));
        let staff = app.sign_up("Staff", "staff@kfactor.test").await;
        assert!(
            kfactor::domain::identity::set_staff(&app.app.svc, &staff.email, true)
                .await
                .unwrap()
        );
        Growth { app, staff }
    }

    async fn platform(&self, from: DateTime<Utc>, to: DateTime<Utc>, interval: &str) -> Value {
        verify(self.app).await;
        let q = format!(
            "query($f: DateTime!, $t: DateTime!) {{ growth(from: $f, to: $t, interval: {interval}) {{ {ALL} }} }}"
        );
        let token = login(self.app, &self.staff.email).await;
        let body = self
            .app
            .gql(Some(&token), &q, json!({ "f": from, "t": to }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["growth"].clone()
    }
}

/// The rollups equal a recomputation from the facts (what `kfactor metrics verify` checks).
pub async fn verify(app: &TestApp) {
    let diffs = kfactor::domain::metrics::rebuild::verify(&app.app.svc)
        .await
        .unwrap();
    assert!(
        diffs.is_empty(),
        "rollups differ from the facts:\n{}",
        diffs.join("\n")
    );
}

/// A fresh session at the clock's current time (the test moves the clock across months).
async fn login(app: &TestApp, email: &str) -> String {
    let body = app
        .gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { token userErrors { code } } }",
            json!({ "i": { "email": email, "password": PASSWORD } }),
        )
        .await;
    body["data"]["logIn"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("log in {email}: {body}"))
        .to_string()
}

/// Lifts a limit of the organization's plan (a staff override written directly).
async fn unlimited(app: &TestApp, org: &str, feature: &str) {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let org = kfactor::domain::ids::OrgId::parse(org).unwrap();
    entity::entitlement_overrides::Entity::insert(entity::entitlement_overrides::ActiveModel {
        organization_id: Set(org),
        feature: Set(feature.to_string()),
        limit_value: Set(None),
        unlimited: Set(true),
        enabled: Set(None),
        expires_at: Set(None),
        created_at: Set(app.clock_now()),
    })
    .exec_without_returning(&app.app.svc.db.write)
    .await
    .unwrap();
}

async fn org_growth(
    app: &TestApp,
    who: &TestUser,
    org: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: &str,
) -> Value {
    let q = format!(
        "query($o: ID!, $f: DateTime!, $t: DateTime!) {{ organization(id: $o) {{ name growth(from: $f, to: $t, interval: {interval}) {{ {ALL} }} }} }}"
    );
    verify(app).await;
    let token = login(app, &who.email).await;
    let body = app
        .gql(Some(&token), &q, json!({ "o": org, "f": from, "t": to }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["organization"]["growth"].clone()
}

/// Sends one invitation from `org`; returns the token of its email (what the invitee clicks,
/// which also proves their address).
pub(crate) async fn invite(
    app: &TestApp,
    by: &TestUser,
    org: &str,
    email: &str,
    surface: &str,
) -> String {
    let body = app
        .gql(
            Some(&by.token),
            "mutation($o: ID!, $e: [String!]!, $s: String) { createInvitations(input: {organizationId: $o, emails: $e, surface: $s}) { invitations { id url } userErrors { code message } } }",
            json!({ "o": org, "e": [email], "s": surface }),
        )
        .await;
    let p = &body["data"]["createInvitations"];
    assert_eq!(p["userErrors"], json!([]), "{body}");
    crate::invitations::emailed_token(app, &p["invitations"][0]).await
}

pub(crate) async fn sign_up_with(app: &TestApp, name: &str, email: &str, extra: Value) -> TestUser {
    let mut input = json!({ "name": name, "email": email, "password": PASSWORD });
    input
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let body = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } organization { id } userErrors { code message } } }",
            json!({ "i": input }),
        )
        .await;
    let p = &body["data"]["signUp"];
    assert_eq!(p["userErrors"], json!([]), "{body}");
    TestUser {
        token: p["token"].as_str().unwrap().into(),
        id: p["user"]["id"].as_str().unwrap().into(),
        org_id: p["organization"]["id"].as_str().unwrap().into(),
        email: email.into(),
        name: name.into(),
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(v: &Value, want: f64) {
    assert!((f(v) - want).abs() < 1e-9, "{v} != {want}");
}

fn by_source(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["signups"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn sources(organic: i64, invite: i64, referral: i64, share: i64, paid: i64) -> Vec<(String, i64)> {
    ["ORGANIC", "INVITE", "REFERRAL", "SHARE", "PAID"]
        .iter()
        .zip([organic, invite, referral, share, paid])
        .map(|(s, n)| (s.to_string(), n))
        .collect()
}

/// 10 users sign up on day 0; each sends 2 viral invitations on day 1 (20 in all); 6 of
/// those become signups on day 3 → i = 20/10 = 2.0, c = 6/20 = 0.3, K = 6/10 = 0.6,
/// amplification = 1/(1 − 0.6) = 2.5.
#[tokio::test]
async fn textbook_cohort() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let mut cohort = Vec::new();
    for n in 0..10 {
        cohort.push(
            app.sign_up(&format!("U{n}"), &format!("u{n}@acme.test"))
                .await,
        );
    }
    app.clock.set(day(1));
    let mut tokens = Vec::new();
    for (n, u) in cohort.iter().enumerate() {
        for k in 0..2 {
            let email = format!("friend{n}-{k}@elsewhere.test");
            tokens.push((
                email.clone(),
                invite(&app, u, &u.org_id, &email, "onboarding").await,
            ));
        }
    }
    app.clock.set(day(3));
    for (email, token) in tokens.iter().step_by(3).take(6) {
        sign_up_with(&app, "Friend", email, json!({ "inviteToken": token })).await;
    }
    // The cohort is day 0 only; the invitees (day 3) are not in it.
    app.clock.set(day(100));
    let m = g.platform(day(0), day(1), "DAY").await;
    assert_eq!(m["cohortSize"], 10);
    assert_eq!(m["signups"], 10);
    close(&m["invitationsPerUser"], 2.0);
    close(&m["invitationConversionRate"], 0.3);
    close(&m["viralCoefficient"], 0.6);
    close(&m["amplification"], 2.5);
    close(&m["shareCoefficient"], 0.0);
    assert_eq!(m["invitationsSent"], 0, "the invitations went out on day 1");
    assert_eq!(m["complete"], true);

    // The week of day 0 holds everything: 16 signups (10 organic, 6 invite), 20 invitations.
    let w = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(by_source(&w["signupsBySource"]), sources(10, 6, 0, 0, 0));
    assert_eq!(w["invitationsSent"], 20);
    assert_eq!(
        w["inviteFunnel"],
        json!({ "sent": 20, "opened": 6, "accepted": 6, "activated": 0 })
    );
    // The cohort now has 16 members; only the 10 originals invited: i = 20/16, K = 6/16.
    close(&w["invitationsPerUser"], 20.0 / 16.0);
    close(&w["viralCoefficient"], 6.0 / 16.0);
    close(&w["medianViralCycleHours"], 72.0);
    assert_eq!(
        w["surfaces"],
        json!([{ "surface": "onboarding", "invitationsSent": 20, "sharesCreated": 0, "viralSignups": 6 }])
    );
    // Maturity: complete only once to + 2W (60 days) has passed.
    app.clock
        .set(day(7) + Duration::days(60) - Duration::seconds(1));
    assert_eq!(g.platform(day(0), day(7), "WEEK").await["complete"], false);
    app.clock.set(day(7) + Duration::days(60));
    assert_eq!(g.platform(day(0), day(7), "WEEK").await["complete"], true);
}

/// Re-sends, and a re-invite after revoking, of one (organization, email) pair are one
/// invitation, sent at its first send.
#[tokio::test]
async fn resends_and_reinvites_of_one_pair_count_once() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    app.clock.set(day(1));
    invite(&app, &ana, &ana.org_id, "bo@elsewhere.test", "a").await;
    app.clock.set(day(2));
    let body = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { invitations { nodes { id } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let id = body["data"]["organization"]["invitations"]["nodes"][0]["id"].clone();
    let resend = app
        .gql(
            Some(&ana.token),
            "mutation($i: ID!) { resendInvitation(id: $i) { userErrors { code } } }",
            json!({ "i": id }),
        )
        .await;
    assert_eq!(resend["data"]["resendInvitation"]["userErrors"], json!([]));
    let revoke = app
        .gql(
            Some(&ana.token),
            "mutation($i: ID!) { revokeInvitation(id: $i) { userErrors { code } } }",
            json!({ "i": id }),
        )
        .await;
    assert_eq!(revoke["data"]["revokeInvitation"]["userErrors"], json!([]));
    app.clock.set(day(3));
    let token = invite(&app, &ana, &ana.org_id, "bo@elsewhere.test", "b").await;
    sign_up_with(
        &app,
        "Bo",
        "bo@elsewhere.test",
        json!({ "inviteToken": token }),
    )
    .await;

    let m = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(m["invitationsSent"], 1);
    assert_eq!(m["inviteFunnel"]["sent"], 1);
    assert_eq!(m["inviteFunnel"]["accepted"], 1);
    // Cohort: Ana and Bo; one viral invitation, converted.
    assert_eq!(m["cohortSize"], 2);
    close(&m["invitationsPerUser"], 0.5);
    close(&m["invitationConversionRate"], 1.0);
    close(&m["viralCoefficient"], 0.5);
    // The pair keeps the surface of its first send.
    assert_eq!(m["surfaces"][0]["surface"], "a");
    assert_eq!(m["topInviters"][0]["invitationsSent"], 1);
    // Only the week of the first send counts it.
    let later = g.platform(day(2), day(7), "WEEK").await;
    assert_eq!(later["invitationsSent"], 0);
}

/// Self-invitations and invitations to existing users count in the invite funnel but not in K.
#[tokio::test]
async fn team_invitations_count_in_the_funnel_not_in_k() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let cy = app.sign_up("Cy", "cy@acme.test").await;
    app.clock.set(day(1));
    // An alias of Ana's own mailbox: a self-invitation.
    let to_self = invite(&app, &ana, &ana.org_id, "ana+alt@acme.test", "x").await;
    let to_cy = invite(&app, &ana, &ana.org_id, "cy@acme.test", "x").await;
    let to_dee = invite(&app, &ana, &ana.org_id, "dee@elsewhere.test", "x").await;
    app.clock.set(day(2));
    let accepted = app
        .gql(
            Some(&cy.token),
            "mutation($t: String!) { acceptInvitation(token: $t) { userErrors { code } } }",
            json!({ "t": to_cy }),
        )
        .await;
    assert_eq!(
        accepted["data"]["acceptInvitation"]["userErrors"],
        json!([])
    );
    sign_up_with(
        &app,
        "Dee",
        "dee@elsewhere.test",
        json!({ "inviteToken": to_dee }),
    )
    .await;
    sign_up_with(
        &app,
        "Ana 2",
        "ana+alt@acme.test",
        json!({ "inviteToken": to_self }),
    )
    .await;

    let m = g.platform(day(0), day(1), "DAY").await;
    // Cohort Ana and Cy; Ana's one viral invitation (to Dee) converted.
    assert_eq!(m["cohortSize"], 2);
    close(&m["invitationsPerUser"], 0.5);
    close(&m["invitationConversionRate"], 1.0);
    close(&m["viralCoefficient"], 0.5);
    let week = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(week["invitationsSent"], 3);
    assert_eq!(
        week["inviteFunnel"],
        json!({ "sent": 3, "opened": 3, "accepted": 3, "activated": 0 })
    );
    assert_eq!(
        week["topInviters"],
        json!([{ "user": { "id": ana.id, "name": "Ana" }, "invitationsSent": 3, "accepted": 3 }])
    );
    // Cohort of the week: Ana, Cy, Dee and Ana's alias; only Dee came through a viral
    // invitation, so only Dee's cycle (48 h) is in the median and K.
    assert_eq!(week["cohortSize"], 4);
    close(&week["viralCoefficient"], 0.25);
    close(&week["medianViralCycleHours"], 48.0);
}

/// W = 2 days here: an invitation sent more than W after the inviter's signup is not in i; a
/// signup more than W after the send does not convert; exactly W is outside (half-open).
#[tokio::test]
async fn the_attribution_window_bounds_invitations_and_conversions() {
    let app = spawn_with(|c| {
        no_limits(c);
        c.attribution_window = Duration::days(2)
    })
    .await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    unlimited(&app, &ana.org_id, "members").await;
    app.clock.set(day(1));
    let late_signup = invite(&app, &ana, &ana.org_id, "late@x.test", "s").await;
    let in_time = invite(&app, &ana, &ana.org_id, "quick@x.test", "s").await;
    let at_the_edge = invite(&app, &ana, &ana.org_id, "edge@x.test", "s").await;
    app.clock.set(day(2) - Duration::milliseconds(1));
    invite(&app, &ana, &ana.org_id, "last-moment@x.test", "s").await;
    app.clock.set(day(2));
    invite(&app, &ana, &ana.org_id, "too-late@x.test", "s").await;
    app.clock.set(day(3) - Duration::seconds(1));
    sign_up_with(&app, "Q", "quick@x.test", json!({ "inviteToken": in_time })).await;
    app.clock.set(day(3));
    sign_up_with(
        &app,
        "E",
        "edge@x.test",
        json!({ "inviteToken": at_the_edge }),
    )
    .await;
    app.clock.set(day(5));
    sign_up_with(
        &app,
        "L",
        "late@x.test",
        json!({ "inviteToken": late_signup }),
    )
    .await;

    let m = g.platform(day(0), day(1), "DAY").await;
    assert_eq!(m["cohortSize"], 1);
    // Sent within [signup, signup + W): the three of day 1 and the last-moment one.
    close(&m["invitationsPerUser"], 4.0);
    // Converted within [send, send + W): only quick@.
    close(&m["invitationConversionRate"], 0.25);
    close(&m["viralCoefficient"], 1.0);
    assert_eq!(
        m["amplification"],
        Value::Null,
        "K ≥ 1 has no amplification"
    );
    // The median cycle counts every viral invite signup credited to the cohort, inside W or
    // not: 3 d − 1 s, 3 d and 5 d after Ana's signup.
    close(&m["medianViralCycleHours"], 72.0);
}

/// A fact at `from` is in the window, a fact at `to` is not.
#[tokio::test]
async fn window_edges_are_half_open() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    app.sign_up("A", "a@x.test").await;
    app.clock.set(day(1));
    app.sign_up("B", "b@x.test").await;
    let m = g.platform(day(0), day(1), "DAY").await;
    assert_eq!(m["signups"], 1);
    let m = g
        .platform(
            day(0) + Duration::microseconds(1),
            day(1) + Duration::microseconds(1),
            "DAY",
        )
        .await;
    assert_eq!(m["signups"], 1);
    let m = g
        .platform(day(0), day(1) + Duration::microseconds(1), "DAY")
        .await;
    assert_eq!(m["signups"], 2);
    let m = g
        .platform(day(0) + Duration::microseconds(1), day(1), "DAY")
        .await;
    assert_eq!(m["signups"], 0);
}

/// An empty window: every rate 0, amplification 1, no median, empty buckets all the same.
#[tokio::test]
async fn an_empty_cohort_has_amplification_one() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    let m = g.platform(day(0), day(3), "DAY").await;
    assert_eq!(m["cohortSize"], 0);
    close(&m["invitationsPerUser"], 0.0);
    close(&m["invitationConversionRate"], 0.0);
    close(&m["viralCoefficient"], 0.0);
    close(&m["shareCoefficient"], 0.0);
    close(&m["amplification"], 1.0);
    close(&m["shareFunnel"]["conversionRate"], 0.0);
    assert_eq!(m["medianViralCycleHours"], Value::Null);
    // 09:00 on day 0 to 09:00 on day 3: the clipped first day, two whole days, a clipped last.
    assert_eq!(m["series"].as_array().unwrap().len(), 4);
    assert_eq!(m["series"][3]["viralCoefficient"], 0.0);
    assert_eq!(by_source(&m["signupsBySource"]), sources(0, 0, 0, 0, 0));
}

/// Organization scope counts that organization's members (by when they joined), its
/// invitations and its links; platform scope counts everyone, on the same data.
#[tokio::test]
async fn organization_and_platform_scope_on_the_same_data() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let zed = app.sign_up("Zed", "zed@other.test").await;
    // Cy signed up long before and joins Ana's organization in the window: an org signup,
    // not a platform one.
    app.clock.set(day(-50));
    let cy = app.sign_up("Cy", "cy@old.test").await;
    app.clock.set(day(1));
    let to_cy = invite(&app, &ana, &ana.org_id, "cy@old.test", "team").await;
    let to_bo = invite(&app, &ana, &ana.org_id, "bo@new.test", "team").await;
    invite(&app, &zed, &zed.org_id, "zoe@new.test", "zed-page").await;
    app.clock.set(day(2));
    let cy_token = login(&app, &cy.email).await;
    let body = app
        .gql(
            Some(&cy_token),
            "mutation($t: String!) { acceptInvitation(token: $t) { userErrors { code } } }",
            json!({ "t": to_cy }),
        )
        .await;
    assert_eq!(body["data"]["acceptInvitation"]["userErrors"], json!([]));
    sign_up_with(&app, "Bo", "bo@new.test", json!({ "inviteToken": to_bo })).await;

    let p = g.platform(day(0), day(7), "WEEK").await;
    // Platform: Ana, Zed, Bo signed up; Cy long before.
    assert_eq!(by_source(&p["signupsBySource"]), sources(2, 1, 0, 0, 0));
    assert_eq!(p["invitationsSent"], 3);
    // Viral invitations: Ana's to Bo and Zed's to Zoe; Bo converted. Cohort 3.
    close(&p["invitationsPerUser"], 2.0 / 3.0);
    close(&p["viralCoefficient"], 1.0 / 3.0);

    let o = org_growth(&app, &ana, &ana.org_id, day(0), day(7), "WEEK").await;
    // Organization: Ana (organic, owner), Cy (organic, joined day 2), Bo (invite, day 2).
    assert_eq!(o["cohortSize"], 3);
    assert_eq!(by_source(&o["signupsBySource"]), sources(2, 1, 0, 0, 0));
    assert_eq!(o["invitationsSent"], 2);
    assert_eq!(
        o["inviteFunnel"],
        json!({ "sent": 2, "opened": 2, "accepted": 2, "activated": 0 })
    );
    close(&o["invitationsPerUser"], 1.0 / 3.0);
    close(&o["invitationConversionRate"], 1.0);
    close(&o["viralCoefficient"], 1.0 / 3.0);
    // Free plan: no series, surfaces or top inviters, and the prompt says how to get them.
    assert_eq!(o["series"], Value::Null);
    assert_eq!(o["surfaces"], Value::Null);
    assert_eq!(o["topInviters"], Value::Null);
    assert_eq!(o["upgrade"]["feature"], "advanced_metrics");
    assert_eq!(o["upgrade"]["plan"]["key"], "business");
    // Zed's organization sees only its own invitation.
    let z = org_growth(&app, &zed, &zed.org_id, day(0), day(7), "WEEK").await;
    assert_eq!(z["invitationsSent"], 1);
    assert_eq!(z["cohortSize"], 1);
    close(&z["viralCoefficient"], 0.0);

    // With the plan feature the gated parts appear; platform scope is never gated.
    app.enable_feature(&ana.org_id, "advanced_metrics").await;
    let o = org_growth(&app, &ana, &ana.org_id, day(0), day(7), "WEEK").await;
    assert_eq!(o["upgrade"], Value::Null);
    assert_eq!(
        o["surfaces"],
        json!([{ "surface": "team", "invitationsSent": 2, "sharesCreated": 0, "viralSignups": 1 }])
    );
    // Monday 09:00 to the next Monday 09:00: the week and a clipped morning.
    assert_eq!(o["series"].as_array().unwrap().len(), 2);
    assert_eq!(o["series"][0]["signups"], 3);
    assert_eq!(o["topInviters"][0]["user"]["id"], ana.id.as_str());
    assert!(p["series"].is_array() && p["upgrade"].is_null());
}

/// A MEMBER gets `growth: null` with FORBIDDEN while the rest of the organization answers;
/// a bad window is `growth: null` with INVALID_INPUT naming the bound; non-staff get null and
/// FORBIDDEN for platform growth.
#[tokio::test]
async fn growth_refuses_members_bad_windows_and_non_staff() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let bo = app.sign_up("Bo", "bo@acme.test").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let q = "query($o: ID!, $f: DateTime!, $t: DateTime!) { organization(id: $o) { name growth(from: $f, to: $t) { signups } } }";
    let vars = json!({ "o": ana.org_id, "f": day(0), "t": day(7) });
    let body = app.gql(Some(&bo.token), q, vars.clone()).await;
    assert_eq!(body["data"]["organization"]["name"], "Ana's workspace");
    assert!(
        body["data"]["organization"]
            .as_object()
            .unwrap()
            .contains_key("growth"),
        "an errored nullable field is present and null: {body}"
    );
    assert_eq!(body["data"]["organization"]["growth"], Value::Null);
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    assert_eq!(body["errors"][0]["path"], json!(["organization", "growth"]));

    let body = app.gql(Some(&ana.token), q, vars).await;
    assert!(body.get("errors").is_none(), "{body}");

    for (from, to, interval, needle) in [
        (day(0), day(0), "DAY", "later than"),
        (day(7), day(0), "WEEK", "later than"),
        (day(0), day(401), "DAY", "at most 400"),
    ] {
        let q = format!("query($o: ID!, $f: DateTime!, $t: DateTime!) {{ organization(id: $o) {{ name growth(from: $f, to: $t, interval: {interval}) {{ signups }} }} }}");
        let body = app
            .gql(
                Some(&ana.token),
                &q,
                json!({ "o": ana.org_id, "f": from, "t": to }),
            )
            .await;
        assert_eq!(body["data"]["organization"]["growth"], Value::Null);
        assert_eq!(error_codes(&body), ["INVALID_INPUT"], "{body}");
        let msg = body["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
    }
    let ok = "query($o: ID!, $f: DateTime!, $t: DateTime!) { organization(id: $o) { growth(from: $f, to: $t, interval: DAY) { signups } } }";
    let midnight = t("2026-03-02T00:00:00Z");
    let body = app
        .gql(
            Some(&ana.token),
            ok,
            json!({ "o": ana.org_id, "f": midnight, "t": midnight + Duration::days(400) }),
        )
        .await;
    assert!(
        body.get("errors").is_none(),
        "400 buckets are allowed: {body}"
    );

    // Dates beyond what the calendar arithmetic supports are bad input, not a crash.
    for (from, to) in [
        ("+262142-12-30T00:00:00Z", "+262142-12-31T00:00:00Z"),
        ("-262143-01-01T00:00:00Z", "-262143-01-02T00:00:00Z"),
        ("9999-06-01T00:00:00Z", "9999-06-02T00:00:00Z"),
    ] {
        let q = "query($o: ID!, $f: DateTime!, $t: DateTime!) { organization(id: $o) { name growth(from: $f, to: $t, interval: WEEK) { signups } } }";
        let body = app
            .gql(
                Some(&ana.token),
                q,
                json!({ "o": ana.org_id, "f": from, "t": to }),
            )
            .await;
        assert_eq!(
            body["data"]["organization"]["name"], "Ana's workspace",
            "{body}"
        );
        assert_eq!(body["data"]["organization"]["growth"], Value::Null);
        assert_eq!(error_codes(&body), ["INVALID_INPUT"], "{body}");
    }
    // A top-inviters limit out of range is a coded error on that field alone.
    let q = "query($o: ID!, $f: DateTime!, $t: DateTime!) { organization(id: $o) { growth(from: $f, to: $t) { signups topInviters(limit: 500) { accepted } } } }";
    let body = app
        .gql(
            Some(&ana.token),
            q,
            json!({ "o": ana.org_id, "f": day(0), "t": day(7) }),
        )
        .await;
    let growth = body["data"]["organization"]["growth"].as_object().unwrap();
    assert_eq!(growth["topInviters"], Value::Null, "{body}");
    assert_eq!(growth["signups"], 0);
    assert_eq!(error_codes(&body), ["INVALID_INPUT"]);

    let q = "query($f: DateTime!, $t: DateTime!) { plans { key } growth(from: $f, to: $t) { signups } }";
    let body = app
        .gql(Some(&ana.token), q, json!({ "f": day(0), "t": day(7) }))
        .await;
    assert!(
        body["data"].as_object().unwrap().contains_key("growth"),
        "{body}"
    );
    assert_eq!(body["data"]["growth"], Value::Null);
    assert!(body["data"]["plans"].is_array());
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
    let body = app.gql(None, q, json!({ "f": day(0), "t": day(7) })).await;
    assert_eq!(error_codes(&body), ["UNAUTHENTICATED"]);
    // A refused caller learns nothing about the window either.
    let body = app
        .gql(Some(&ana.token), q, json!({ "f": day(7), "t": day(0) }))
        .await;
    assert_eq!(error_codes(&body), ["FORBIDDEN"]);
}

/// Shared links: creations, opens by guests (with and without a visitor id) and users,
/// distinct visitors, SHARE signups and the conversion rate; the shares credited to the
/// cohort make the share coefficient.
#[tokio::test]
async fn share_funnel_with_anonymous_visitors() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"Plan\"}) { project { id } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let project = body["data"]["createProject"]["project"]["id"].clone();
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($p: ID!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: VIEW, surface: \"share-dialog\"}) { sharedLink { url } userErrors { code } } }",
            json!({ "p": project }),
        )
        .await;
    let url = body["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    app.clock.set(day(1));
    let open = |visitor: Option<&'static str>, who: Option<String>| {
        let token = token.clone();
        let app = &app;
        async move {
            let body = app
                .gql(
                    who.as_deref(),
                    "query($t: String!, $v: String) { sharedLink(token: $t, visitorId: $v) { permission } }",
                    json!({ "t": token, "v": visitor }),
                )
                .await;
            assert!(body.get("errors").is_none(), "{body}");
        }
    };
    // Two anonymous opens (one visitor each), a guest twice with one visitor id, and Ana.
    open(None, None).await;
    open(None, None).await;
    open(Some("guest-1"), None).await;
    open(Some("guest-1"), None).await;
    open(None, Some(ana.token.clone())).await;
    app.clock.set(day(2));
    sign_up_with(
        &app,
        "Gus",
        "gus@x.test",
        json!({ "shareToken": token, "visitorId": "guest-1" }),
    )
    .await;
    // Referral signup credited to Ana too.
    let body = app
        .gql(Some(&ana.token), "{ me { referralCode } }", json!({}))
        .await;
    let code = body["data"]["me"]["referralCode"]
        .as_str()
        .unwrap()
        .to_string();
    sign_up_with(&app, "Rae", "rae@x.test", json!({ "referralCode": code })).await;

    let m = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(
        m["shareFunnel"],
        json!({ "linksCreated": 1, "visits": 5, "uniqueVisitors": 4, "signups": 1, "conversionRate": 0.25 })
    );
    assert_eq!(by_source(&m["signupsBySource"]), sources(1, 0, 1, 1, 0));
    // Cohort Ana, Gus, Rae; two share/referral signups credited to Ana within W.
    close(&m["shareCoefficient"], 2.0 / 3.0);
    assert_eq!(
        m["surfaces"],
        json!([{ "surface": "share-dialog", "invitationsSent": 0, "sharesCreated": 1, "viralSignups": 1 }])
    );

    // Organization scope: the link's organization gets the funnel and the share signup.
    app.enable_feature(&ana.org_id, "advanced_metrics").await;
    let o = org_growth(&app, &ana, &ana.org_id, day(0), day(7), "WEEK").await;
    assert_eq!(
        o["shareFunnel"],
        json!({ "linksCreated": 1, "visits": 5, "uniqueVisitors": 4, "signups": 1, "conversionRate": 0.25 })
    );
    // Ana is the only member; Gus (share) and Rae (referral, Ana's active organization) are
    // credited to this organization.
    assert_eq!(o["cohortSize"], 1);
    close(&o["shareCoefficient"], 2.0);
    // Only the day of opens: guests and users alike.
    let d1 = g.platform(day(1), day(2), "DAY").await;
    assert_eq!(d1["shareFunnel"]["visits"], 5);
    assert_eq!(d1["shareFunnel"]["linksCreated"], 0);
}

/// DAY buckets over five days with activity on two of them: every bucket present, the first
/// and last clipped, and the points add up to the window totals.
#[tokio::test]
async fn series_has_empty_buckets_and_sums_to_the_totals() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0) + Duration::hours(3)); // 12:00 on day 0
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let to_bo = invite(&app, &ana, &ana.org_id, "bo@x.test", "s").await;
    app.clock.set(day(3));
    sign_up_with(&app, "Bo", "bo@x.test", json!({ "inviteToken": to_bo })).await;
    app.sign_up("Cy", "cy@x.test").await;
    invite(&app, &ana, &ana.org_id, "dee@x.test", "s").await;

    let from = day(0) + Duration::hours(1); // 10:00 on day 0
    let to = day(4) + Duration::hours(2); // 11:00 on day 4
    let m = g.platform(from, to, "DAY").await;
    let series = m["series"].as_array().unwrap();
    let starts: Vec<&str> = series
        .iter()
        .map(|p| p["periodStart"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-03-02T10:00:00+00:00",
            "2026-03-03T00:00:00+00:00",
            "2026-03-04T00:00:00+00:00",
            "2026-03-05T00:00:00+00:00",
            "2026-03-06T00:00:00+00:00"
        ]
    );
    let signups: Vec<i64> = series
        .iter()
        .map(|p| p["signups"].as_i64().unwrap())
        .collect();
    assert_eq!(signups, [1, 0, 0, 2, 0]);
    let sent: Vec<i64> = series
        .iter()
        .map(|p| p["invitationsSent"].as_i64().unwrap())
        .collect();
    assert_eq!(sent, [1, 0, 0, 1, 0]);
    assert_eq!(series[0]["invitationsAccepted"], 1);
    assert_eq!(series[0]["viralCoefficient"], 1.0);
    assert_eq!(series[3]["viralCoefficient"], 0.0);
    assert_eq!(series[3]["viralSignups"], 1);
    assert_eq!(
        by_source(&series[3]["signupsBySource"]),
        sources(1, 1, 0, 0, 0)
    );
    assert_eq!(m["signups"], signups.iter().sum::<i64>());
    assert_eq!(m["invitationsSent"], sent.iter().sum::<i64>());
    // K over the window: one conversion in a cohort of three.
    close(&m["viralCoefficient"], 1.0 / 3.0);

    // WEEK and MONTH cut the same facts into one clipped bucket each.
    for interval in ["WEEK", "MONTH"] {
        let m = g.platform(from, to, interval).await;
        let series = m["series"].as_array().unwrap();
        assert_eq!(series.len(), 1, "{interval}");
        assert_eq!(series[0]["periodStart"], "2026-03-02T10:00:00+00:00");
        assert_eq!(series[0]["signups"], 3);
    }
}

/// The funnel's steps are subsets: an invitation accepted through the API without its page
/// being opened still counts as opened; activated needs accepted.
#[tokio::test]
async fn each_funnel_step_is_a_subset_of_the_previous_one() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let opened_only = invite(&app, &ana, &ana.org_id, "o@x.test", "s").await;
    let accepted = invite(&app, &ana, &ana.org_id, "a@x.test", "s").await;
    let activated = invite(&app, &ana, &ana.org_id, "act@x.test", "s").await;
    invite(&app, &ana, &ana.org_id, "never@x.test", "s").await;
    app.clock.set(day(1));
    let body = app
        .gql(
            None,
            "query($t: String!) { invitation(token: $t) { status } }",
            json!({ "t": opened_only }),
        )
        .await;
    assert_eq!(body["data"]["invitation"]["status"], "PENDING");
    sign_up_with(&app, "A", "a@x.test", json!({ "inviteToken": accepted })).await;
    let act = sign_up_with(
        &app,
        "Act",
        "act@x.test",
        json!({ "inviteToken": activated }),
    )
    .await;
    let body = app
        .gql(
            Some(&act.token),
            "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"P\"}) { project { id } userErrors { code } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(body["data"]["createProject"]["userErrors"], json!([]));
    let m = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(
        m["inviteFunnel"],
        json!({ "sent": 4, "opened": 3, "accepted": 2, "activated": 1 })
    );
}

/// Four invite signups credited to the cohort, 10, 20, 30 and 50 hours after their
/// inviters' signups: the median is the mean of the middle two, 25 hours.
#[tokio::test]
async fn median_cycle_time_with_an_even_count() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let mut tokens = Vec::new();
    for n in 0..4 {
        tokens.push(invite(&app, &ana, &ana.org_id, &format!("f{n}@x.test"), "s").await);
    }
    for (n, (hours, token)) in [10, 20, 30, 50].iter().zip(&tokens).enumerate() {
        app.clock.set(day(0) + Duration::hours(*hours));
        sign_up_with(
            &app,
            "F",
            &format!("f{n}@x.test"),
            json!({ "inviteToken": token }),
        )
        .await;
    }
    let m = g.platform(day(0), day(0) + Duration::hours(1), "DAY").await;
    close(&m["medianViralCycleHours"], 25.0);
    close(&m["viralCoefficient"], 4.0);
    // In organization scope the same four signups count from Ana's membership start.
    app.enable_feature(&ana.org_id, "advanced_metrics").await;
    let o = org_growth(&app, &ana, &ana.org_id, day(0), day(7), "WEEK").await;
    // Cohort: Ana and the four invitees (members); only Ana's invitees count.
    assert_eq!(o["cohortSize"], 5);
    close(&o["medianViralCycleHours"], 25.0);
}

/// Which action activates a user is configurable; the funnel's `activated` follows it.
#[tokio::test]
async fn activation_follows_the_configured_events() {
    let app = spawn_with(|c| {
        no_limits(c);
        c.activation_events = vec![kfactor::config::ActivationEvent::InvitationSent]
    })
    .await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let to_bo = invite(&app, &ana, &ana.org_id, "bo@x.test", "s").await;
    let bo = sign_up_with(&app, "Bo", "bo@x.test", json!({ "inviteToken": to_bo })).await;
    // A project does not activate under this configuration; an invitation does.
    app.gql(
        Some(&bo.token),
        "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"P\"}) { project { id } } }",
        json!({ "o": ana.org_id }),
    )
    .await;
    let me = app
        .gql(Some(&bo.token), "{ me { activatedAt } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["activatedAt"], Value::Null);
    let m = g.platform(day(0), day(1), "DAY").await;
    assert_eq!(m["inviteFunnel"]["activated"], 0);
    invite(&app, &bo, &ana.org_id, "cy@x.test", "s").await;
    let me = app
        .gql(Some(&bo.token), "{ me { activatedAt } }", json!({}))
        .await;
    assert!(me["data"]["me"]["activatedAt"].is_string());
    let m = g.platform(day(0), day(1), "DAY").await;
    assert_eq!(m["inviteFunnel"]["activated"], 1);
}

/// An organization's numbers describe its current members: someone who left drops out of its
/// cohort and K, while the organization's own invitations still count; platform numbers stay.
#[tokio::test]
async fn a_member_who_left_drops_out_of_the_organization_cohort() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let to_bo = invite(&app, &ana, &ana.org_id, "bo@x.test", "s").await;
    app.clock.set(day(1));
    let bo = sign_up_with(&app, "Bo", "bo@x.test", json!({ "inviteToken": to_bo })).await;
    let to_dee = invite(&app, &bo, &ana.org_id, "dee@x.test", "s").await;
    app.clock.set(day(2));
    sign_up_with(&app, "Dee", "dee@x.test", json!({ "inviteToken": to_dee })).await;
    let before = org_growth(&app, &ana, &ana.org_id, day(0), day(7), "WEEK").await;
    assert_eq!(before["cohortSize"], 3);
    close(&before["viralCoefficient"], 2.0 / 3.0);
    let platform_before = g.platform(day(0), day(7), "WEEK").await;

    app.clock.set(day(3));
    let left = app
        .gql(
            Some(&bo.token),
            "mutation($o: ID!) { leaveOrganization(id: $o) { userErrors { code } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(left["data"]["leaveOrganization"]["userErrors"], json!([]));
    let after = org_growth(&app, &ana, &ana.org_id, day(0), day(7), "WEEK").await;
    assert_eq!(after["cohortSize"], 2);
    assert_eq!(by_source(&after["signupsBySource"]), sources(1, 1, 0, 0, 0));
    // Ana's invitation (to Bo) converted; Bo's (to Dee) left with Bo.
    close(&after["invitationsPerUser"], 0.5);
    close(&after["viralCoefficient"], 0.5);
    assert_eq!(after["invitationsSent"], 2);
    assert_eq!(after["inviteFunnel"]["accepted"], 2);
    let platform_after = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(platform_after, platform_before);
}

/// An organization created by an existing user counts its creator from the day it began,
/// in whole-day windows (read from the rollups) as in partial ones (read from the facts).
#[tokio::test]
async fn a_new_organization_counts_its_creator_from_its_first_day() {
    let app = spawn().await;
    let _g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    app.clock.set(day(2));
    let body = app
        .gql(
            Some(&ana.token),
            "mutation { createOrganization(name: \"Second\") { organization { id } userErrors { code } } }",
            json!({}),
        )
        .await;
    let second = body["data"]["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let midnight = t("2026-03-04T00:00:00Z");
    for (from, to) in [
        (midnight, midnight + Duration::days(1)),
        (
            midnight + Duration::hours(6),
            midnight + Duration::hours(23),
        ),
        (day(-1), day(14)),
    ] {
        let g = org_growth(&app, &ana, &second, from, to, "DAY").await;
        assert_eq!(g["signups"], 1, "{from}..{to}: {g}");
        assert_eq!(g["cohortSize"], 1);
        assert_eq!(by_source(&g["signupsBySource"]), sources(1, 0, 0, 0, 0));
    }
    // Before it existed, it had nobody.
    let g = org_growth(&app, &ana, &second, day(0), midnight, "DAY").await;
    assert_eq!(g["signups"], 0);
}

async fn project_with_link(app: &TestApp, who: &TestUser, surface: &str) -> (String, String) {
    let body = app
        .gql(
            Some(&who.token),
            "mutation($o: ID!) { createProject(input: {organizationId: $o, name: \"Doc\"}) { project { id } userErrors { code } } }",
            json!({ "o": who.org_id }),
        )
        .await;
    let project = body["data"]["createProject"]["project"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let body = app
        .gql(
            Some(&who.token),
            "mutation($p: ID!, $s: String) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: VIEW, surface: $s}) { sharedLink { url } userErrors { code } } }",
            json!({ "p": project, "s": surface }),
        )
        .await;
    let url = body["data"]["createSharedLink"]["sharedLink"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    (project, url.rsplit('/').next().unwrap().to_string())
}

async fn open(app: &TestApp, token: &str, visitor: &str) {
    let body = app
        .gql(
            None,
            "query($t: String!, $v: String) { sharedLink(token: $t, visitorId: $v) { permission } }",
            json!({ "t": token, "v": visitor }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// Deleting a project takes its links and their visits out of every number (visits, distinct
/// visitors across days, links created) while the signups they brought stay, under the surface
/// "unknown"; the rollups stay equal to the facts.
#[tokio::test]
async fn deleting_a_project_takes_its_links_and_visits_with_it() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let (doomed, doomed_link) = project_with_link(&app, &ana, "header").await;
    let (_, kept_link) = project_with_link(&app, &ana, "footer").await;
    for (d, visitor, link) in [
        (1, "v1", &doomed_link),
        (1, "v2", &doomed_link),
        (2, "v1", &kept_link),
        (3, "v1", &doomed_link),
        (3, "v3", &kept_link),
    ] {
        app.clock.set(day(d));
        open(&app, link, visitor).await;
    }
    app.clock.set(day(4));
    sign_up_with(
        &app,
        "Gus",
        "gus@x.test",
        json!({ "shareToken": doomed_link, "visitorId": "v2" }),
    )
    .await;
    let before = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(
        before["shareFunnel"],
        json!({ "linksCreated": 2, "visits": 5, "uniqueVisitors": 3, "signups": 1, "conversionRate": 1.0 / 3.0 })
    );
    let body = app
        .gql(
            Some(&ana.token),
            "mutation($p: ID!) { deleteProject(id: $p) { deletedId userErrors { code } } }",
            json!({ "p": doomed }),
        )
        .await;
    assert_eq!(body["data"]["deleteProject"]["userErrors"], json!([]));
    // verify() inside platform() checks the rollups against the facts.
    let after = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(
        after["shareFunnel"],
        json!({ "linksCreated": 1, "visits": 2, "uniqueVisitors": 2, "signups": 1, "conversionRate": 0.5 })
    );
    let surfaces: Vec<(String, i64, i64)> = after["surfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["surface"].as_str().unwrap().to_string(),
                s["sharesCreated"].as_i64().unwrap(),
                s["viralSignups"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        surfaces,
        [("unknown".to_string(), 0, 1), ("footer".to_string(), 1, 0)]
    );
    // Day 3 alone: only v3's open of the kept link remains.
    let d3 = g.platform(day(3), day(4), "DAY").await;
    assert_eq!(d3["shareFunnel"]["uniqueVisitors"], 1);
    assert_eq!(d3["shareFunnel"]["visits"], 1);
}

/// Merging a workspace into another moves its links, their visits and the signups credited
/// to it into the target's numbers; the workspace's own invitations leave with it.
#[tokio::test]
async fn merging_a_workspace_moves_its_growth_into_the_target() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let bo = app.sign_up("Bo", "bo@acme.test").await;
    app.enable_feature(&ana.org_id, "advanced_metrics").await;
    // Bo joins Ana's organization, and keeps his own workspace with a shared link.
    let to_bo = invite(&app, &ana, &ana.org_id, "bo@acme.test", "team").await;
    let body = app
        .gql(
            Some(&bo.token),
            "mutation($t: String!) { acceptInvitation(token: $t) { userErrors { code } } }",
            json!({ "t": to_bo }),
        )
        .await;
    assert_eq!(body["data"]["acceptInvitation"]["userErrors"], json!([]));
    let (_, link) = project_with_link(&app, &bo, "bo-page").await;
    invite(&app, &bo, &bo.org_id, "zed@x.test", "bo-invites").await;
    app.clock.set(day(1));
    open(&app, &link, "guest-1").await;
    open(&app, &link, "guest-2").await;
    sign_up_with(
        &app,
        "Gus",
        "gus@x.test",
        json!({ "shareToken": link, "visitorId": "guest-1" }),
    )
    .await;
    let platform_before = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(platform_before["invitationsSent"], 2);

    let body = app
        .gql(
            Some(&bo.token),
            "mutation($s: ID!, $t: ID!) { mergeOrganization(sourceId: $s, targetId: $t) { movedProjects userErrors { code message } } }",
            json!({ "s": bo.org_id, "t": ana.org_id }),
        )
        .await;
    assert_eq!(
        body["data"]["mergeOrganization"]["userErrors"],
        json!([]),
        "{body}"
    );
    let o = org_growth(&app, &ana, &ana.org_id, day(0), day(7), "WEEK").await;
    assert_eq!(
        o["shareFunnel"],
        json!({ "linksCreated": 1, "visits": 2, "uniqueVisitors": 2, "signups": 1, "conversionRate": 0.5 })
    );
    // Bo (a member since day 0) is credited with Gus's share signup within W.
    assert_eq!(o["cohortSize"], 2);
    close(&o["shareCoefficient"], 0.5);
    assert_eq!(
        o["invitationsSent"], 1,
        "Bo's workspace invitation left with it"
    );
    let platform = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(platform["invitationsSent"], 1);
    assert_eq!(platform["shareFunnel"], platform_before["shareFunnel"]);
}

/// Concurrent opens by the same visitors (on PostgreSQL through two instances at once) count
/// each visitor once, across days, and leave the rollups equal to the facts.
#[tokio::test]
async fn concurrent_opens_count_each_visitor_once() {
    let app = spawn().await;
    let g = Growth::new(&app).await;
    app.clock.set(day(0));
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let (_, link) = project_with_link(&app, &ana, "s").await;
    let second = if crate::helpers::on_postgres() {
        Some(crate::helpers::spawn_on(&app.db_url, no_limits).await)
    } else {
        None
    };
    for d in [1, 2] {
        app.clock.set(day(d));
        if let Some(b) = &second {
            b.clock.set(day(d));
        }
        let mut opens = Vec::new();
        for n in 0..120 {
            let target = match (&second, n % 2) {
                (Some(b), 1) => b,
                _ => &app,
            };
            let link = link.clone();
            // Day 1: visitors 0..29; day 2: visitors 15..44.
            let visitor = format!("v{}", 15 * (d - 1) + n % 30);
            opens.push(async move { open(target, &link, &visitor).await });
        }
        futures_util::future::join_all(opens).await;
    }
    let m = g.platform(day(0), day(7), "WEEK").await;
    assert_eq!(m["shareFunnel"]["visits"], 240);
    assert_eq!(m["shareFunnel"]["uniqueVisitors"], 45);
    let d2 = g.platform(day(2), day(3), "DAY").await;
    assert_eq!(d2["shareFunnel"]["uniqueVisitors"], 30);
    // A window starting at noon of day 1 sees day 1's afternoon (nothing) and day 2.
    let half = g.platform(day(1) + Duration::hours(3), day(3), "DAY").await;
    assert_eq!(half["shareFunnel"]["uniqueVisitors"], 30);
}

/// A server-to-server API key with `growth:read` reads the platform's and any organization's
/// growth; a key without it gets null and FORBIDDEN.
#[tokio::test]
async fn api_keys_with_growth_read_see_every_scope() {
    use kfactor::domain::{access::Scope, api_keys};
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@acme.test").await;
    let (_, reader) = api_keys::create(&app.app.svc, "warehouse", &[Scope::GrowthRead])
        .await
        .unwrap();
    let (_, billing) = api_keys::create(&app.app.svc, "billing", &[Scope::PlansWrite])
        .await
        .unwrap();
    let now = app.clock_now();
    let vars =
        json!({ "o": ana.org_id, "f": now - Duration::days(1), "t": now + Duration::days(1) });
    let q = "query($o: ID!, $f: DateTime!, $t: DateTime!) { growth(from: $f, to: $t) { signups }
      organization(id: $o) { name growth(from: $f, to: $t) { signups cohortSize } } }";
    let body = app.gql(Some(&reader), q, vars.clone()).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["growth"]["signups"], 1);
    assert_eq!(body["data"]["organization"]["growth"]["cohortSize"], 1);
    let body = app.gql(Some(&billing), q, vars).await;
    assert_eq!(body["data"]["growth"], Value::Null);
    assert_eq!(body["data"]["organization"]["growth"], Value::Null);
    assert_eq!(error_codes(&body), ["FORBIDDEN", "FORBIDDEN"]);
}
