//! The weekly digest: who gets it, what it says (the API's numbers for that week), exactly
//! once per recipient and organization across reruns, restarts and (PostgreSQL) two
//! instances, the scheduler, and unsubscribing without signing in.
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    accounts::{mail_to, mails_to, spawn_mailing},
    growth::{invite, no_limits, sign_up_with},
    helpers::{spawn_on, TestApp},
};
use kfactor::domain::digest;

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn monday(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

/// (recipient, digest scope) of every digest email, sorted.
async fn digest_emails(app: &TestApp) -> Vec<String> {
    let mut out: Vec<String> = entity::emails::Entity::find()
        .filter(entity::emails::Column::Kind.eq(digest::EMAIL_KIND))
        .all(&app.app.svc.db.read)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.recipient)
        .collect();
    out.sort();
    out
}

/// The `data` of every growth.weekly message, oldest first.
async fn weekly_messages(app: &TestApp) -> Vec<(Option<kfactor::domain::ids::OrgId>, Value)> {
    let mut rows = entity::webhook_messages::Entity::find()
        .filter(entity::webhook_messages::Column::EventType.eq(digest::EVENT_TYPE))
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    rows.sort_by_key(|m| m.id);
    rows.into_iter()
        .map(|m| (m.organization_id, m.payload["data"].clone()))
        .collect()
}

/// What the scheduler does when it wakes with the default schedule (called by hand here so
/// no background run races the test).
async fn run_due(app: &TestApp) -> digest::Report {
    let schedule = kfactor::config::DigestSchedule::parse("mon 09:00")
        .unwrap()
        .unwrap();
    let week = digest::due_week(schedule, app.clock_now());
    digest::run(&app.app.svc, week).await.unwrap()
}

#[tokio::test]
async fn each_recipient_gets_one_digest_per_week_with_the_apis_numbers_and_can_leave_it() {
    let (app, sink) = spawn_mailing(no_limits).await;
    // The week of Monday 16 November 2026.
    app.clock.set(at(2026, 11, 18, 12));
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo_token = invite(&app, &ana, &ana.org_id, "bo@example.com", "settings").await;
    invite(&app, &ana, &ana.org_id, "cy@example.com", "settings").await;
    sign_up_with(
        &app,
        "Bo",
        "bo@example.com",
        json!({ "inviteToken": bo_token }),
    )
    .await;
    // Eve is an ADMIN of Ana's workspace who opted out; Sol is alone and quiet; Sam is staff.
    let eve = app.sign_up("Eve", "eve@example.com").await;
    app.add_member(&ana.org_id, &eve.id, "admin").await;
    app.sign_up("Sol", "sol@example.com").await;
    app.sign_up("Sam", "sam@example.com").await;
    kfactor::domain::identity::set_staff(&app.app.svc, "sam@example.com", true)
        .await
        .unwrap();
    let eve_id = kfactor::domain::ids::UserId::parse(&eve.id).unwrap();
    let link = digest::unsubscribe_link(&app.app.svc, eve_id);
    let path = link.strip_prefix(&app.url).unwrap().to_string();
    let page = app
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Stop sending the weekly growth digest to"),
        "{page}"
    );
    let done = app
        .http
        .post(&link)
        .form(&[("action", "unsubscribe")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 200);
    assert!(done.text().await.unwrap().contains("is unsubscribed"));
    // Another last character (never the same one, or the "forged" token is the real one).
    let last = if path.ends_with('x') { 'y' } else { 'x' };
    let forged = app
        .http
        .post(format!("{}{}{last}", app.url, &path[..path.len() - 1]))
        .form(&[("action", "unsubscribe")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status().as_u16(),
        404,
        "a token that does not verify"
    );

    // Before Monday 09:00 the week is not due yet: the last run was the week before.
    app.clock.set(at(2026, 11, 23, 8));
    let r = run_due(&app).await;
    assert_eq!(r.week_start, Some(monday(11, 9)));
    assert_eq!(
        digest_emails(&app).await,
        ["sam@example.com"],
        "only the platform digest to staff: nobody was active"
    );
    app.clock.set(at(2026, 11, 23, 9));
    let r = run_due(&app).await;
    assert_eq!(
        (r.week_start, r.digests, r.emails),
        (Some(monday(11, 16)), 2, 2),
        "{r:?}"
    );
    assert_eq!(
        digest_emails(&app).await,
        ["ana@example.com", "sam@example.com", "sam@example.com"],
        "Ana for her workspace (Bo is a member, Eve opted out, Sol's workspace was quiet), Sam for the platform"
    );

    // The webhook message carries the API's numbers for exactly that week.
    let msgs = weekly_messages(&app).await;
    let org_uuid = kfactor::domain::ids::OrgId::parse(&ana.org_id).unwrap();
    let (_, data) = msgs
        .iter()
        .find(|(o, _)| *o == Some(org_uuid))
        .expect("Ana's message");
    let api = app
        .gql(
            Some(&ana.token),
            "query($o: ID!, $f: DateTime!, $t: DateTime!) { organization(id: $o) { growth(from: $f, to: $t) { viralCoefficient signups invitationsSent } } }",
            json!({ "o": ana.org_id, "f": data["week_start"], "t": data["week_end"] }),
        )
        .await;
    let g = &api["data"]["organization"]["growth"];
    assert_eq!(data["week_start"], "2026-11-16T00:00:00Z");
    assert_eq!(
        data["this_week"]["viral_coefficient"], g["viralCoefficient"],
        "{api}"
    );
    assert_eq!(data["this_week"]["signups"], g["signups"]);
    assert_eq!(data["this_week"]["invitations_sent"], 2);
    assert_eq!(data["previous_week"]["signups"], 0);
    assert_eq!(data["organization_id"], ana.org_id);
    assert_eq!(
        msgs.iter().filter(|(o, _)| o.is_none()).count(),
        2,
        "platform: the two weeks"
    );

    // The email says it, links to the dashboard for that week and to unsubscribing.
    let mail = mail_to(&sink, "ana@example.com", "Viral coefficient K").await;
    assert!(
        mail.contains("Viral coefficient K: 0.500 (week before: 0.000, +0.500)"),
        "{mail}"
    );
    assert!(
        mail.contains("range=custom&from=2026-11-16&to=2026-11-22"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("{}/digest/unsubscribe/", app.url)),
        "{mail}"
    );
    assert!(
        mail.contains(&format!(
            "List-Unsubscribe: <{}/digest/unsubscribe/",
            app.url
        )) && mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "the one-click unsubscribe headers (RFC 8058): {mail}"
    );

    // Again, and after a restart: nothing more.
    let again = run_due(&app).await;
    assert!(again.already_done);
    let restarted = spawn_on(&app.db_url, no_limits).await;
    restarted.clock.set(at(2026, 11, 23, 10));
    let r = run_due(&restarted).await;
    assert!(r.already_done && r.emails == 0, "{r:?}");
    restarted.kill();
    assert_eq!(digest_emails(&app).await.len(), 3);
    assert_eq!(weekly_messages(&app).await.len(), 3);
    // The mail above arrived long ago; a second one would have been sent by now as well.
    assert_eq!(
        mails_to(&sink, "ana@example.com")
            .iter()
            .filter(|m| m.contains("Viral coefficient K"))
            .count(),
        1
    );
}

#[tokio::test]
async fn concurrent_runs_write_each_digest_once() {
    let app = crate::helpers::spawn_with(no_limits).await;
    app.clock.set(at(2026, 11, 18, 12));
    let ana = app.sign_up("Ana", "ana@example.com").await;
    for i in 0..3 {
        let other = app.sign_up("Member", &format!("m{i}@example.com")).await;
        app.add_member(&ana.org_id, &other.id, "admin").await;
    }
    app.clock.set(at(2026, 11, 23, 9));
    // PostgreSQL: two instances race; SQLite (one instance by design): two runs of one.
    let pg = std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty());
    let second = if pg {
        let s = spawn_on(&app.db_url, no_limits).await;
        s.clock.set(at(2026, 11, 23, 9));
        Some(s)
    } else {
        None
    };
    let other_svc = second.as_ref().map_or(&app.app.svc, |s| &s.app.svc);
    let week = monday(11, 16);
    let (a, b) = tokio::join!(
        digest::run(&app.app.svc, week),
        digest::run(other_svc, week)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.emails + b.emails, 4, "{a:?} {b:?}");
    assert_eq!(
        a.digests + b.digests,
        2,
        "Ana's workspace and the platform: {a:?} {b:?}"
    );
    let mut emails = digest_emails(&app).await;
    emails.dedup();
    assert_eq!(emails.len(), 4, "one email per admin and owner");
    assert_eq!(digest_emails(&app).await.len(), 4);
    assert_eq!(weekly_messages(&app).await.len(), 2);
    let runs = entity::digest_runs::Entity::find()
        .count(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(runs, 2);
    if let Some(s) = second {
        s.kill();
    }
}

#[tokio::test]
async fn the_scheduler_sends_when_the_time_comes_and_not_when_it_is_off() {
    let app = crate::helpers::spawn_with(|c| {
        no_limits(c);
        c.digest_schedule = kfactor::config::DigestSchedule::parse("mon 09:00").unwrap();
    })
    .await;
    app.clock.set(at(2026, 11, 18, 12));
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    app.clock.set(at(2026, 11, 23, 9));
    app.app.svc.bus.wake_digest();
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while digest_emails(&app).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the scheduler did not run the due digest"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(digest_emails(&app).await, ["ana@example.com"]);
    let mut rows = entity::digest_runs::Entity::find()
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    rows.sort_by(|a, b| a.week_start.cmp(&b.week_start));
    assert!(
        rows.iter().any(|r| r.week_start == "2026-11-16"),
        "{rows:?}"
    );

    let off = crate::helpers::spawn_with(no_limits).await;
    assert_eq!(digest::run_due(&off.app.svc).await.unwrap(), None);
}
