//! Notifications: who is told what (never the actor, never a guest, never across tenants,
//! nothing new to a former member), mentions of members only, reading and marking read,
//! preferences, the live stream and its end, and the batched email with the injected clock
//! (one per interval, read items left out) and its unsubscribe link.
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    accounts::{mail_to, mails_to, spawn_mailing},
    growth::{invite, no_limits, sign_up_with},
    helpers::{
        spawn_with,
        ws::{connect, next_json, subscribe, wait_live},
        TestApp, TestUser,
    },
    projects::create_project,
    sharing::share,
};
use kfactor::domain::notifications::email;

const NOTES: &str = "query($u: Boolean!) { me { unreadNotificationCount
  notifications(first: 50, unreadOnly: $u) { totalCount nodes { id kind summary actorName read projectId organizationId } } } }";
const MARK: &str = "mutation($i: [ID!], $t: ID) { markNotificationsRead(ids: $i, upTo: $t) { marked unreadCount userErrors { code field } } }";
const PREFS: &str = "mutation($i: NotificationPreferencesInput!) { updateNotificationPreferences(input: $i) {
  preferences { comments mentions invitationAccepted signups limitReached email } userErrors { code } } }";
const REMOVE: &str = "mutation($o: ID!, $u: ID!) { removeMember(organizationId: $o, userId: $u) { userErrors { code } } }";

/// (kind, summary) of every notification of `u`, oldest first.
async fn notes(app: &TestApp, u: &TestUser) -> Vec<(String, String)> {
    let body = app.gql(Some(&u.token), NOTES, json!({ "u": false })).await;
    let nodes = body["data"]["me"]["notifications"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    nodes
        .iter()
        .rev()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_string(),
                n["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn comment(app: &TestApp, u: &TestUser, project: &str, body: &str) {
    let r = app
        .gql(
            Some(&u.token),
            "mutation($p: ID!, $b: String!) { addComment(projectId: $p, body: $b) { comment { id } userErrors { code } } }",
            json!({ "p": project, "b": body }),
        )
        .await;
    assert!(r["data"]["addComment"]["comment"].is_object(), "{r}");
}

fn pair(kind: &str, summary: &str) -> (String, String) {
    (kind.to_string(), summary.to_string())
}

#[tokio::test]
async fn comments_and_mentions_reach_members_involved_never_the_actor_a_guest_or_another_tenant() {
    let app = spawn_with(no_limits).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    app.change_plan(&ana.org_id, "pro").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let cy = app.sign_up("Cy", "cy@example.com").await;
    let dee = app.sign_up("Dee", "dee@example.com").await;
    // Eve belongs to another organization only.
    let eve = app.sign_up("Eve", "eve@example.com").await;
    for u in [&bo, &cy, &dee] {
        app.add_member(&ana.org_id, &u.id, "member").await;
    }
    let project = create_project(&app, &ana, "Roadmap").await;

    comment(&app, &bo, &project, "First!").await;
    assert_eq!(
        notes(&app, &ana).await,
        [pair("COMMENT", "Bo commented on Roadmap")]
    );
    assert!(notes(&app, &bo).await.is_empty(), "never the actor");
    assert!(notes(&app, &dee).await.is_empty(), "Dee is not involved");

    // Cy mentions Bo (a commenter: one row, the mention), Dee (not involved: mentioned),
    // Eve (not a member: ignored) and a name (never parsed).
    comment(
        &app,
        &cy,
        &project,
        &format!("@[{}] @[{}] @[{}] @Ana look", bo.id, dee.id, eve.id),
    )
    .await;
    assert_eq!(
        notes(&app, &ana).await[1..],
        [pair("COMMENT", "Cy commented on Roadmap")]
    );
    assert_eq!(
        notes(&app, &bo).await,
        [pair("MENTION", "Cy mentioned you in a comment on Roadmap")]
    );
    assert_eq!(
        notes(&app, &dee).await,
        [pair("MENTION", "Cy mentioned you in a comment on Roadmap")]
    );
    assert!(notes(&app, &eve).await.is_empty(), "never across tenants");

    // A guest's comment tells the creator and the commenters; the guest has no account.
    let (_, token) = share(&app, &ana, &project, "COMMENT", None).await;
    let r = app
        .gql(
            None,
            "mutation($t: String!) { guestComment(input: {token: $t, body: \"Nice\", guestName: \"Gil\"}) { comment { id } userErrors { code } } }",
            json!({ "t": token }),
        )
        .await;
    assert!(r["data"]["guestComment"]["comment"].is_object(), "{r}");
    for u in [&ana, &bo, &cy] {
        assert_eq!(
            notes(&app, u).await.last().unwrap(),
            &pair("COMMENT", "Gil commented on Roadmap"),
            "{}",
            u.name
        );
    }
    assert_eq!(
        notes(&app, &dee).await.len(),
        1,
        "a mention does not involve"
    );

    // Cy leaves the organization: nothing new reaches her.
    let r = app
        .gql(
            Some(&ana.token),
            REMOVE,
            json!({ "o": ana.org_id, "u": cy.id }),
        )
        .await;
    assert_eq!(r["data"]["removeMember"]["userErrors"], json!([]), "{r}");
    let before = notes(&app, &cy).await.len();
    comment(&app, &bo, &project, &format!("@[{}] again", cy.id)).await;
    assert_eq!(notes(&app, &cy).await.len(), before, "a former member");
    assert_eq!(
        notes(&app, &ana).await.last().unwrap(),
        &pair("COMMENT", "Bo commented on Roadmap")
    );
    // Eve's own workspace never saw a thing.
    assert_eq!(
        notes(&app, &eve).await.len(),
        0,
        "another tenant is never told"
    );
}

#[tokio::test]
async fn accepted_invitations_and_signups_through_links_and_codes_tell_whoever_caused_them() {
    let app = spawn_with(no_limits).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let token = invite(&app, &ana, &ana.org_id, "dan@example.com", "settings").await;
    sign_up_with(
        &app,
        "Dan",
        "dan@example.com",
        json!({ "inviteToken": token }),
    )
    .await;
    let project = create_project(&app, &ana, "Roadmap").await;
    let (_, link) = share(&app, &ana, &project, "VIEW", None).await;
    sign_up_with(
        &app,
        "Sue",
        "sue@example.com",
        json!({ "shareToken": link }),
    )
    .await;
    let me = app
        .gql(Some(&ana.token), "{ me { referralCode } }", json!({}))
        .await;
    let code = me["data"]["me"]["referralCode"]
        .as_str()
        .unwrap()
        .to_string();
    let rex = sign_up_with(
        &app,
        "Rex",
        "rex@example.com",
        json!({ "referralCode": code }),
    )
    .await;
    assert_eq!(
        notes(&app, &ana).await,
        [
            pair(
                "INVITATION_ACCEPTED",
                "Dan accepted your invitation to Ana's workspace"
            ),
            pair("SIGNUP", "Sue signed up through your shared link"),
            pair("SIGNUP", "Rex signed up through your referral link"),
        ]
    );
    assert!(notes(&app, &rex).await.is_empty());
}

#[tokio::test]
async fn a_reached_limit_tells_the_admins_and_owners_once_each_as_they_chose() {
    let app = spawn_with(no_limits).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let cy = app.sign_up("Cy", "cy@example.com").await;
    let di = app.sign_up("Di", "di@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "admin").await;
    app.add_member(&ana.org_id, &cy.id, "member").await;
    app.add_member(&ana.org_id, &di.id, "admin").await;
    let off = app
        .gql(
            Some(&di.token),
            PREFS,
            json!({ "i": { "limitReached": false } }),
        )
        .await;
    assert_eq!(
        off["data"]["updateNotificationPreferences"]["preferences"]["limitReached"], false,
        "{off}"
    );
    // The free plan holds three projects: the third (by a member) reaches the limit.
    let in_anas = |name: &'static str| {
        let (app, cy, org) = (&app, &cy, ana.org_id.clone());
        async move {
            app.gql(
                Some(&cy.token),
                "mutation($o: ID!, $n: String!) { createProject(input: {organizationId: $o, name: $n}) { userErrors { code } } }",
                json!({ "o": org, "n": name }),
            )
            .await["data"]["createProject"]["userErrors"]
                .clone()
        }
    };
    for name in ["One", "Two"] {
        assert_eq!(in_anas(name).await, json!([]));
    }
    assert!(
        notes(&app, &ana).await.is_empty(),
        "two of three is not the limit"
    );
    assert_eq!(in_anas("Three").await, json!([]));
    let told = vec![pair(
        "LIMIT_REACHED",
        "Ana's workspace reached its limit of 3 projects on Free",
    )];
    assert_eq!(notes(&app, &ana).await, told, "the owner");
    assert_eq!(notes(&app, &bo).await, told, "an admin");
    assert!(notes(&app, &cy).await.is_empty(), "a member is not told");
    assert!(
        notes(&app, &di).await.is_empty(),
        "an admin who turned it off"
    );
    // Refusals past the limit tell nobody again.
    assert_eq!(in_anas("Four").await[0]["code"], "LIMIT_REACHED");
    assert_eq!(notes(&app, &ana).await, told);
    // Another tenant hears nothing of it.
    let eve = app.sign_up("Eve", "eve@example.com").await;
    assert!(notes(&app, &eve).await.is_empty());
}

#[tokio::test]
async fn reading_counting_marking_read_and_preferences() {
    let app = spawn_with(no_limits).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    for i in 0..3 {
        comment(&app, &bo, &project, &format!("note {i}")).await;
    }
    let all = app
        .gql(Some(&ana.token), NOTES, json!({ "u": false }))
        .await;
    let me = &all["data"]["me"];
    assert_eq!(me["unreadNotificationCount"], 3, "{all}");
    let ids: Vec<String> = me["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    // Newest first: mark the newest by id, then everything up to the middle one.
    let r = app
        .gql(Some(&ana.token), MARK, json!({ "i": [ids[0]] }))
        .await;
    assert_eq!(
        r["data"]["markNotificationsRead"],
        json!({ "marked": 1, "unreadCount": 2, "userErrors": [] })
    );
    // Bo cannot mark Ana's.
    let r = app.gql(Some(&bo.token), MARK, json!({ "t": ids[0] })).await;
    assert_eq!(r["data"]["markNotificationsRead"]["marked"], 0, "{r}");
    let unread = app.gql(Some(&ana.token), NOTES, json!({ "u": true })).await;
    assert_eq!(
        unread["data"]["me"]["notifications"]["totalCount"], 2,
        "{unread}"
    );
    let r = app
        .gql(Some(&ana.token), MARK, json!({ "t": ids[1] }))
        .await;
    assert_eq!(r["data"]["markNotificationsRead"]["marked"], 2, "{r}");
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 0, "{r}");
    let r = app.gql(Some(&ana.token), MARK, json!({})).await;
    assert_eq!(
        r["data"]["markNotificationsRead"]["userErrors"][0]["code"],
        "INVALID_INPUT"
    );
    // Bo's list holds nothing of Ana's, and another user's count is not for him to read.
    assert!(notes(&app, &bo).await.is_empty());
    let other = app
        .gql(
            Some(&bo.token),
            "query($o: ID!) { organization(id: $o) { members { nodes { user { id unreadNotificationCount } } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(
        other["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{other}"
    );

    // Comments off, mentions on.
    let r = app
        .gql(
            Some(&ana.token),
            PREFS,
            json!({ "i": { "comments": false } }),
        )
        .await;
    assert_eq!(
        r["data"]["updateNotificationPreferences"]["preferences"],
        json!({ "comments": false, "mentions": true, "invitationAccepted": true, "signups": true, "limitReached": true, "email": true })
    );
    comment(&app, &bo, &project, "quiet").await;
    comment(&app, &bo, &project, &format!("@[{}] loud", ana.id)).await;
    let n = notes(&app, &ana).await;
    assert_eq!(n.len(), 4, "{n:?}");
    assert_eq!(n[3].0, "MENTION");
    let prefs = app
        .gql(
            Some(&ana.token),
            "{ me { notificationPreferences { comments email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        prefs["data"]["me"]["notificationPreferences"],
        json!({ "comments": false, "email": true })
    );
}

#[tokio::test]
async fn the_live_stream_delivers_the_callers_own_and_ends_on_removal() {
    let app = spawn_with(no_limits).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let project = create_project(&app, &ana, "Roadmap").await;
    comment(&app, &ana, &project, "mine").await;
    let mut ws = connect(&app, Some(&bo.token)).await;
    subscribe(
        &mut ws,
        "1",
        "subscription($o: ID) { notifications(organizationId: $o) { kind summary read } }",
        json!({ "o": ana.org_id }),
    )
    .await;
    wait_live(&app, 1).await;
    // Ana's own comment notifies nobody; Cy mentions Bo.
    let cy = app.sign_up("Cy", "cy@example.com").await;
    app.add_member(&ana.org_id, &cy.id, "member").await;
    comment(&app, &cy, &project, &format!("@[{}] hi", bo.id)).await;
    let m = next_json(&mut ws).await;
    assert_eq!(
        m["payload"]["data"]["notifications"],
        json!({ "kind": "MENTION", "summary": "Cy mentioned you in a comment on Roadmap", "read": false }),
        "{m}"
    );
    let r = app
        .gql(
            Some(&ana.token),
            REMOVE,
            json!({ "o": ana.org_id, "u": bo.id }),
        )
        .await;
    assert_eq!(r["data"]["removeMember"]["userErrors"], json!([]), "{r}");
    let last = next_json(&mut ws).await;
    assert_eq!(
        last["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{last}"
    );
    wait_live(&app, 0).await;
}

/// The notification emails queued so far.
async fn queued(app: &TestApp) -> u64 {
    entity::emails::Entity::find()
        .filter(entity::emails::Column::Kind.eq(email::EMAIL_KIND))
        .count(&app.app.svc.db.read)
        .await
        .unwrap()
}

/// Waits (10 s at most) until `n` notification emails reached `to`.
async fn wait_mails(sink: &crate::helpers::smtp::SmtpSink, to: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        let m: Vec<String> = mails_to(sink, to)
            .into_iter()
            .filter(|m| m.contains("what happened"))
            .collect();
        if m.len() >= n {
            return m;
        }
        assert!(Instant::now() < deadline, "{} of {n} mails", m.len());
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn email_is_batched_once_per_interval_without_what_was_read_and_can_be_left() {
    let (app, sink) = spawn_mailing(no_limits).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "member").await;
    let roadmap = create_project(&app, &ana, "Roadmap").await;
    let budget = create_project(&app, &ana, "Budget").await;
    comment(&app, &bo, &roadmap, "one").await;
    app.advance(Duration::minutes(1));
    comment(&app, &bo, &budget, "two").await;
    // Ana reads the Budget one in the app.
    let all = app
        .gql(Some(&ana.token), NOTES, json!({ "u": false }))
        .await;
    let newest = all["data"]["me"]["notifications"]["nodes"][0]["id"].clone();
    app.gql(Some(&ana.token), MARK, json!({ "i": [newest] }))
        .await;

    app.advance(Duration::minutes(13));
    email::run_due(&app.app.svc).await.unwrap();
    assert_eq!(queued(&app).await, 0, "14 minutes: not due yet");
    app.advance(Duration::minutes(1));
    email::run_due(&app.app.svc).await.unwrap();
    assert_eq!(queued(&app).await, 1);
    let first = mail_to(&sink, "ana@example.com", "Bo commented on Roadmap").await;
    assert!(
        !first.contains("Budget"),
        "read items are left out: {first}"
    );

    // A minute later Bo comments again: the next email waits for the interval.
    app.advance(Duration::minutes(1));
    comment(&app, &bo, &roadmap, "three").await;
    app.advance(Duration::minutes(10));
    email::run_due(&app.app.svc).await.unwrap();
    assert_eq!(queued(&app).await, 1, "one email per interval");
    app.advance(Duration::minutes(5));
    email::run_due(&app.app.svc).await.unwrap();
    assert_eq!(queued(&app).await, 2);
    wait_mails(&sink, "ana@example.com", 2).await;

    // The worker batches by the injected clock too.
    comment(&app, &bo, &budget, "four").await;
    app.advance(Duration::minutes(16));
    wait_mails(&sink, "ana@example.com", 3).await;
    assert_eq!(queued(&app).await, 3);

    // Unsubscribing without signing in; a forged token is refused.
    let link = email::unsubscribe_link(
        &app.app.svc,
        kfactor::domain::ids::UserId::parse(&ana.id).unwrap(),
    );
    assert!(first.contains(&link), "the email carries the link");
    // RFC 8058 one-click unsubscribe: mail clients show their own button and POST
    // `List-Unsubscribe=One-Click` to the header's URL (used below).
    assert!(
        first.contains(&format!("List-Unsubscribe: <{link}>"))
            && first.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{first}"
    );
    let last = if link.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &link[..link.len() - 1]);
    let r = app
        .http
        .post(&forged)
        .form(&[("action", "unsubscribe")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let page = app
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Stop emailing notifications to"), "{page}");
    let done = app
        .http
        .post(&link)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 200);
    assert!(done.text().await.unwrap().contains("is unsubscribed"));
    let p = app
        .gql(
            Some(&ana.token),
            "{ me { notificationPreferences { email comments } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        p["data"]["me"]["notificationPreferences"],
        json!({ "email": false, "comments": true })
    );
    comment(&app, &bo, &roadmap, "five").await;
    app.advance(Duration::minutes(16));
    email::run_due(&app.app.svc).await.unwrap();
    assert_eq!(queued(&app).await, 3, "no email after unsubscribing");
    // The notification itself is still there to read.
    let n: Value = app.gql(Some(&ana.token), NOTES, json!({ "u": true })).await;
    assert_eq!(n["data"]["me"]["unreadNotificationCount"], 4, "{n}");
}
