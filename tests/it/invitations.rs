//! Invitations: bulk send, re-send, expiry, revoke, accept (also concurrently), signup via
//! invitation, the public preview and page, and real email delivery.
use chrono::Duration;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{
    error_codes,
    smtp::{decode_qp, SmtpSink},
    spawn, spawn_with, user_error_codes, TestApp, TestUser,
};

const INVITE: &str = "mutation($o: ID!, $e: [String!]!, $r: Role, $s: String) {
  createInvitations(input: {organizationId: $o, emails: $e, role: $r, surface: $s}) {
    invitations { id email role status sendCount surface url expiresAt invitedBy { id } organization { id } }
    userErrors { code message field } } }";

async fn invite(app: &TestApp, by: &TestUser, emails: &[&str], role: Option<&str>) -> Value {
    let body = app
        .gql(
            Some(&by.token),
            INVITE,
            json!({ "o": by.org_id, "e": emails, "r": role, "s": "settings-page" }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["createInvitations"].clone()
}

/// The token of the invitation's email (what its recipient clicks), which also proves the
/// address. The SMTP tests read it from a real email; elsewhere it is derived the same way.
pub async fn emailed_token(app: &TestApp, invitation: &Value) -> String {
    let id = kfactor::domain::ids::InvitationId::parse(invitation["id"].as_str().unwrap()).unwrap();
    let model = entity::invitations::Entity::find_by_id(id.0)
        .one(&app.app.svc.db.read)
        .await
        .unwrap()
        .unwrap();
    kfactor::domain::invitations::email_link(&app.app.svc, &model)
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// The token of `Invitation.url` (the copyable link).
pub fn token_of(invitation: &Value) -> String {
    invitation["url"]
        .as_str()
        .expect("url")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

const ACCEPT: &str = "mutation($t: String!) { acceptInvitation(token: $t) { membership { role organization { id } user { id } } userErrors { code message } } }";
const PREVIEW: &str = "query($t: String!) { invitation(token: $t) { organizationName inviterName email role status expiresAt } }";

async fn accept(app: &TestApp, as_: &TestUser, token: &str) -> Value {
    app.gql(Some(&as_.token), ACCEPT, json!({ "t": token }))
        .await["data"]["acceptInvitation"]
        .clone()
}

#[tokio::test]
async fn bulk_invitations_validate_each_address_and_resend_instead_of_duplicating() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let p = invite(
        &app,
        &ana,
        &[
            "bo@example.com",
            "not an email",
            "ana@example.com",
            "Cy@Example.com",
            "cy@example.com",
        ],
        None,
    )
    .await;
    let sent: Vec<&str> = p["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(sent, vec!["bo@example.com", "cy@example.com"]);
    let errors = p["userErrors"].as_array().unwrap();
    let by_field: Vec<(String, Value)> = errors
        .iter()
        .map(|e| (e["code"].as_str().unwrap().to_string(), e["field"].clone()))
        .collect();
    assert_eq!(
        by_field,
        vec![
            ("INVALID_INPUT".into(), json!(["input", "emails", "1"])),
            ("ALREADY_MEMBER".into(), json!(["input", "emails", "2"])),
            ("INVALID_INPUT".into(), json!(["input", "emails", "4"])),
        ]
    );
    let bo = &p["invitations"][0];
    assert_eq!(bo["role"], "MEMBER");
    assert_eq!(bo["status"], "PENDING");
    assert_eq!(bo["surface"], "settings-page");
    assert_eq!(bo["invitedBy"]["id"], ana.id.as_str());

    // Inviting Bo again re-sends the same invitation with a new token and a new expiry.
    app.clock.advance(Duration::days(2));
    let again = invite(&app, &ana, &["BO@example.com"], None).await;
    let bo2 = &again["invitations"][0];
    assert_eq!(bo2["id"], bo["id"]);
    assert_eq!(bo2["sendCount"], 2);
    assert_ne!(token_of(bo2), token_of(bo));
    assert!(bo2["expiresAt"].as_str().unwrap() > bo["expiresAt"].as_str().unwrap());
    let list = app
        .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { invitations { totalCount nodes { email } } } }", json!({ "o": ana.org_id }))
        .await;
    assert_eq!(list["data"]["organization"]["invitations"]["totalCount"], 2);

    // The feed and the outbox recorded every send.
    let feed = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity { nodes { type summary } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let sends = feed["data"]["organization"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "INVITATION_SENT")
        .count();
    assert_eq!(sends, 3);
    let msgs = entity::webhook_messages::Entity::find()
        .filter(entity::webhook_messages::Column::EventType.eq("invitation.sent"))
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0].payload["data"]["email"], "bo@example.com");
    assert_eq!(msgs[0].payload["data"]["inviter_id"], ana.id.as_str());
    assert_eq!(msgs[0].payload["data"]["surface"], "settings-page");
}

#[tokio::test]
async fn invite_policy_and_role_rules() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mo = app.sign_up("Mo", "mo@example.com").await;
    app.add_member(&ana.org_id, &mo.id, "member").await;
    let mo_in_ana = TestUser {
        org_id: ana.org_id.clone(),
        ..mo.clone()
    };

    let p = invite(&app, &ana, &["x@example.com"], Some("OWNER")).await;
    assert_eq!(user_error_codes(&p), vec!["INVALID_INPUT"]);
    assert_eq!(p["userErrors"][0]["field"], json!(["input", "role"]));

    let p = invite(&app, &mo_in_ana, &["x@example.com"], Some("ADMIN")).await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    let p = invite(&app, &mo_in_ana, &["x@example.com"], None).await;
    assert_eq!(
        p["userErrors"],
        json!([]),
        "any member may invite by default"
    );
    assert!(
        p["invitations"][0]["url"].is_string(),
        "the sender sees the link"
    );

    app.gql(Some(&ana.token), "mutation($o: ID!) { setInvitePolicy(organizationId: $o, policy: ADMINS_ONLY) { userErrors { code } } }", json!({ "o": ana.org_id }))
        .await;
    let p = invite(&app, &mo_in_ana, &["y@example.com"], None).await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    let p = invite(&app, &ana, &["y@example.com"], Some("ADMIN")).await;
    assert_eq!(p["invitations"][0]["role"], "ADMIN");

    for n in [0usize, 101] {
        let emails: Vec<String> = (0..n).map(|i| format!("p{i}@example.com")).collect();
        let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
        let p = invite(&app, &ana, &refs, None).await;
        assert_eq!(user_error_codes(&p), vec!["INVALID_INPUT"]);
        assert_eq!(p["userErrors"][0]["field"], json!(["input", "emails"]));
    }
}

#[tokio::test]
async fn resend_kills_the_old_link_and_revoke_kills_the_current_one() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let p = invite(&app, &ana, &["bo@example.com"], None).await;
    let id = p["invitations"][0]["id"].as_str().unwrap().to_string();
    let old = emailed_token(&app, &p["invitations"][0]).await;

    let r = app
        .gql(Some(&ana.token), "mutation($i: ID!) { resendInvitation(id: $i) { invitation { id sendCount url } userErrors { code } } }", json!({ "i": id }))
        .await;
    let new = emailed_token(&app, &r["data"]["resendInvitation"]["invitation"]).await;
    assert_eq!(r["data"]["resendInvitation"]["invitation"]["sendCount"], 2);

    let body = app.gql(None, PREVIEW, json!({ "t": old })).await;
    assert_eq!(body["data"]["invitation"], json!(null));
    assert_eq!(error_codes(&body), vec!["NOT_FOUND"]);
    let body = app.gql(None, PREVIEW, json!({ "t": new })).await;
    assert_eq!(body["data"]["invitation"]["status"], "PENDING");
    assert_eq!(body["data"]["invitation"]["inviterName"], "Ana");
    assert_eq!(
        body["data"]["invitation"]["organizationName"],
        "Ana's workspace"
    );

    let bo = app.sign_up("Bo", "bo@example.com").await;
    assert_eq!(
        user_error_codes(&accept(&app, &bo, &old).await),
        vec!["NOT_FOUND"]
    );

    let r = app
        .gql(Some(&ana.token), "mutation($i: ID!) { revokeInvitation(id: $i) { invitation { status url } userErrors { code } } }", json!({ "i": id }))
        .await;
    assert_eq!(
        r["data"]["revokeInvitation"]["invitation"]["status"],
        "REVOKED"
    );
    assert_eq!(
        r["data"]["revokeInvitation"]["invitation"]["url"],
        json!(null)
    );
    assert_eq!(
        user_error_codes(&accept(&app, &bo, &new).await),
        vec!["INVITATION_REVOKED"]
    );
    let body = app.gql(None, PREVIEW, json!({ "t": new })).await;
    assert_eq!(body["data"]["invitation"]["status"], "REVOKED");
    let r = app
        .gql(
            Some(&ana.token),
            "mutation($i: ID!) { resendInvitation(id: $i) { userErrors { code } } }",
            json!({ "i": id }),
        )
        .await;
    assert_eq!(
        user_error_codes(&r["data"]["resendInvitation"]),
        vec!["INVITATION_REVOKED"]
    );
}

#[tokio::test]
async fn invitations_expire_after_seven_days_without_sleeping() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let p = invite(&app, &ana, &["bo@example.com"], None).await;
    let token = emailed_token(&app, &p["invitations"][0]).await;

    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    let body = app.gql(None, PREVIEW, json!({ "t": token })).await;
    assert_eq!(body["data"]["invitation"]["status"], "EXPIRED");
    assert_eq!(
        user_error_codes(&accept(&app, &bo, &token).await),
        vec!["INVITATION_EXPIRED"]
    );
    let q = "query($o: ID!, $s: InvitationStatus) { organization(id: $o) { invitations(status: $s) { totalCount nodes { status } } } }";
    let expired = app
        .gql(
            Some(&ana.token),
            q,
            json!({ "o": ana.org_id, "s": "EXPIRED" }),
        )
        .await;
    assert_eq!(
        expired["data"]["organization"]["invitations"]["totalCount"],
        1
    );
    let pending = app
        .gql(
            Some(&ana.token),
            q,
            json!({ "o": ana.org_id, "s": "PENDING" }),
        )
        .await;
    assert_eq!(
        pending["data"]["organization"]["invitations"]["totalCount"],
        0
    );

    // Re-sending revives it with a fresh week.
    let again = invite(&app, &ana, &["bo@example.com"], None).await;
    assert_eq!(again["invitations"][0]["status"], "PENDING");
    let m = accept(
        &app,
        &bo,
        &emailed_token(&app, &again["invitations"][0]).await,
    )
    .await;
    assert_eq!(m["userErrors"], json!([]));
}

#[tokio::test]
async fn accepting_checks_the_email_and_is_single_use() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;
    let p = invite(&app, &ana, &["BO@example.com"], Some("ADMIN")).await;
    let token = emailed_token(&app, &p["invitations"][0]).await;

    assert_eq!(
        user_error_codes(&accept(&app, &eve, &token).await),
        vec!["INVITATION_EMAIL_MISMATCH"]
    );

    // Two concurrent accepts by Bo: one membership, one error.
    let (a, b) = tokio::join!(accept(&app, &bo, &token), accept(&app, &bo, &token));
    let ok: Vec<&Value> = [&a, &b]
        .into_iter()
        .filter(|p| p["userErrors"] == json!([]))
        .collect();
    assert_eq!(ok.len(), 1, "{a} {b}");
    assert_eq!(ok[0]["membership"]["role"], "ADMIN");
    assert_eq!(
        ok[0]["membership"]["organization"]["id"],
        ana.org_id.as_str()
    );
    let failed = if ok[0] == &a { &b } else { &a };
    let code = user_error_codes(failed);
    assert!(
        code == vec!["INVITATION_ALREADY_ACCEPTED"] || code == vec!["ALREADY_MEMBER"],
        "{failed}"
    );

    let members = app
        .gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { members { totalCount } invitations { nodes { status acceptedAt acceptedBy { id } } } } }", json!({ "o": ana.org_id }))
        .await;
    let o = &members["data"]["organization"];
    assert_eq!(o["members"]["totalCount"], 2);
    assert_eq!(o["invitations"]["nodes"][0]["status"], "ACCEPTED");
    assert_eq!(
        o["invitations"]["nodes"][0]["acceptedBy"]["id"],
        bo.id.as_str()
    );
    assert_eq!(
        user_error_codes(&accept(&app, &bo, &token).await),
        vec!["INVITATION_ALREADY_ACCEPTED"]
    );

    // Bo keeps his own workspace too.
    let me = app
        .gql(
            Some(&bo.token),
            "{ me { memberships { role organization { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["memberships"].as_array().unwrap().len(), 2);
    let feed = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { activity(first: 2) { nodes { type } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    let types: Vec<&str> = feed["data"]["organization"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["INVITATION_ACCEPTED", "MEMBER_JOINED"]);
}

const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) {
  token user { id acquisitionSource invitedBy { id name } memberships { role organization { id } } }
  organization { id viewerRole } userErrors { code message field } } }";

#[tokio::test]
async fn signing_up_through_an_invitation_joins_that_organization_only() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let p = invite(&app, &ana, &["bo@example.com"], None).await;
    let token = emailed_token(&app, &p["invitations"][0]).await;

    let wrong = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "notbo@example.com", "password": "correct horse battery", "name": "X", "inviteToken": token } }))
        .await;
    assert_eq!(
        user_error_codes(&wrong["data"]["signUp"]),
        vec!["INVITATION_EMAIL_MISMATCH"]
    );

    let body = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "bo@example.com", "password": "correct horse battery", "name": "Bo",
            "inviteToken": token, "utmSource": "ads" } }))
        .await;
    let s = &body["data"]["signUp"];
    assert_eq!(s["userErrors"], json!([]), "{body}");
    assert_eq!(s["user"]["acquisitionSource"], "INVITE");
    assert_eq!(s["user"]["invitedBy"]["id"], ana.id.as_str());
    assert_eq!(s["organization"]["id"], ana.org_id.as_str());
    assert_eq!(s["organization"]["viewerRole"], "MEMBER");
    assert_eq!(
        s["user"]["memberships"].as_array().unwrap().len(),
        1,
        "no personal workspace"
    );

    let bo_id = kfactor::domain::ids::UserId::parse(s["user"]["id"].as_str().unwrap()).unwrap();
    let db = &app.app.svc.db.read;
    let bo = entity::users::Entity::find_by_id(bo_id.0)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let inv_id =
        kfactor::domain::ids::InvitationId::parse(p["invitations"][0]["id"].as_str().unwrap())
            .unwrap();
    assert_eq!(bo.invite_token_id, Some(inv_id.0));
    let events = entity::referral_events::Entity::find()
        .all(db)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["invited", "accepted", "signed_up"]);
    assert_eq!(events[2].resulted_in_signup_id, Some(bo.id));
    let hooks = entity::webhook_messages::Entity::find()
        .all(db)
        .await
        .unwrap();
    let types: Vec<&str> = hooks.iter().map(|h| h.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["invitation.sent", "invitation.accepted", "referral.signup"]
    );
    let signup = &hooks[2].payload["data"];
    assert_eq!(signup["source"], "INVITE");
    assert_eq!(signup["referrer_id"], ana.id.as_str());
    assert_eq!(signup["invitation_id"], p["invitations"][0]["id"]);

    // The token is spent.
    let again = app
        .gql(None, SIGN_UP, json!({ "i": { "email": "bo2@example.com", "password": "correct horse battery", "name": "Bo", "inviteToken": token } }))
        .await;
    assert_eq!(
        user_error_codes(&again["data"]["signUp"]),
        vec!["INVITATION_ALREADY_ACCEPTED"]
    );
}

#[tokio::test]
async fn the_invitation_page_shows_who_invited_whom_and_records_the_open() {
    let app = spawn().await;
    let ana = app.sign_up("Ana <script>", "ana@example.com").await;
    let p = invite(&app, &ana, &["bo@example.com"], None).await;
    // The page the invitation email links to.
    let token = emailed_token(&app, &p["invitations"][0]).await;
    let q = "query($o: ID!) { organization(id: $o) { invitations { nodes { openedAt } } } }";
    let before = app
        .gql(Some(&ana.token), q, json!({ "o": ana.org_id }))
        .await;
    assert_eq!(
        before["data"]["organization"]["invitations"]["nodes"][0]["openedAt"],
        json!(null)
    );

    let resp = app
        .http
        .get(format!("{}/invite/{token}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Ana &lt;script&gt; invited you to join Ana &lt;script&gt;'s workspace"),
        "{html}"
    );
    assert!(html.contains("bo@example.com"));
    assert!(
        html.contains(&format!("/invite/{token}/accept")),
        "accept action"
    );
    assert!(
        html.contains(&format!("/signup?invite={token}")),
        "sign-up action"
    );

    let after = app
        .gql(Some(&ana.token), q, json!({ "o": ana.org_id }))
        .await;
    assert!(after["data"]["organization"]["invitations"]["nodes"][0]["openedAt"].is_string());

    let resp = app
        .http
        .get(format!("{}/invite/bogus", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // Log in and accept from the page. Bo never verified his address: through the copied
    // link that is refused, through the emailed one it is the proof.
    app.sign_up("Bo", "bo@example.com").await;
    let copied = token_of(&p["invitations"][0]);
    let resp = app
        .form_post(
            &format!("/invite/{copied}/accept"),
            &[
                ("email", "bo@example.com"),
                ("password", "correct horse battery"),
            ],
            &[],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 422);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Verify your email address first"));
    let resp = app
        .form_post(
            &format!("/invite/{token}/accept"),
            &[
                ("email", "bo@example.com"),
                ("password", "correct horse battery"),
            ],
            &[],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("You joined"));
}

#[tokio::test]
async fn invitation_emails_reach_a_real_smtp_server_with_a_working_link() {
    let sink = SmtpSink::start(0).await;
    let url = sink.url();
    let app = spawn_with(move |c| c.smtp_url = Some(url)).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    sink.wait_for(1).await; // Ana's verification email
    sink.refuse_next(1); // the invitation's first attempt fails: the mailer must retry
    invite(&app, &ana, &["bo@example.com"], None).await;
    let invitation_row =
        || entity::emails::Entity::find().filter(entity::emails::Column::Kind.eq("invitation"));

    // The first attempt failed; the retry is due 30 s later (injected clock).
    let mut pending = None;
    for _ in 0..200 {
        let row = invitation_row()
            .one(&app.app.svc.db.read)
            .await
            .unwrap()
            .unwrap();
        if row.attempts > 0 {
            pending = Some(row);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pending = pending.expect("a first attempt within 10 s");
    assert_eq!(sink.mails().len(), 1, "only Ana's verification email");
    assert_eq!(pending.status.as_str(), "pending");
    assert_eq!(pending.attempts, 1);
    assert!(pending.last_error.is_some());
    app.clock.advance(Duration::seconds(31));
    app.app.svc.bus.wake_mailer();

    let mails = sink.wait_for(2).await;
    assert_eq!(mails[1].to, vec!["bo@example.com"]);
    let data = decode_qp(&mails[1].data);
    assert!(
        data.contains("Subject: Ana invited you to join Ana's workspace"),
        "{data}"
    );
    assert!(
        data.contains("text/plain") && data.contains("text/html"),
        "both parts"
    );
    assert!(data.contains("expires on"));
    let link = data
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/invite/", app.url)))
        .expect("link in the text part")
        .to_string();
    let page = app.http.get(&link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "{link}");
    assert!(page.text().await.unwrap().contains("invited you to join"));
    let sent = invitation_row()
        .one(&app.app.svc.db.read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.status.as_str(), "sent");
    assert!(
        !format!("{sent:?}").contains(link.rsplit('/').next().unwrap()),
        "no token in the database"
    );
}

#[tokio::test]
async fn send_rate_and_pending_caps() {
    let app = spawn_with(|c| {
        c.invitation_sends_per_hour = 3;
        c.max_pending_invitations = 4;
    })
    .await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let p = invite(&app, &ana, &["a@x.io", "b@x.io", "c@x.io", "d@x.io"], None).await;
    assert_eq!(p["invitations"].as_array().unwrap().len(), 3);
    assert_eq!(user_error_codes(&p), vec!["RATE_LIMITED"]);
    assert_eq!(p["userErrors"][0]["field"], json!(["input", "emails", "3"]));

    let (status, body) = app
        .post(
            Some(&ana.token),
            INVITE,
            json!({ "o": ana.org_id, "e": ["e@x.io"] }),
        )
        .await;
    assert_eq!(
        status, 429,
        "a whole request refused by a rate limit: {body}"
    );
    assert_eq!(error_codes(&body), vec!["RATE_LIMITED"]);
    let retry = body["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .unwrap();
    assert!(retry > 3000 && retry <= 3600, "{retry}");

    app.clock.advance(Duration::hours(1));
    let p = invite(&app, &ana, &["d@x.io", "e@x.io"], None).await;
    assert_eq!(p["invitations"].as_array().unwrap().len(), 1);
    assert_eq!(
        user_error_codes(&p),
        vec!["LIMIT_REACHED"],
        "4 pending at most"
    );
}

#[tokio::test]
async fn outsiders_cannot_see_or_touch_invitations() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;
    let p = invite(&app, &ana, &["bo@example.com"], None).await;
    let id = p["invitations"][0]["id"].as_str().unwrap();

    let body = app
        .gql(
            Some(&eve.token),
            INVITE,
            json!({ "o": ana.org_id, "e": ["x@evil.io"] }),
        )
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["createInvitations"]),
        vec!["PERMISSION_DENIED"]
    );
    for m in ["resendInvitation", "revokeInvitation"] {
        let q = format!("mutation($i: ID!) {{ {m}(id: $i) {{ invitation {{ email }} userErrors {{ code }} }} }}");
        let body = app.gql(Some(&eve.token), &q, json!({ "i": id })).await;
        assert_eq!(user_error_codes(&body["data"][m]), vec!["NOT_FOUND"], "{m}");
    }
    let body = app
        .gql(
            Some(&eve.token),
            "query($o: ID!) { organization(id: $o) { invitations { nodes { email } } } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"]);
    assert!(!body.to_string().contains("bo@example.com"));
}

/// `createInvitations` with an Idempotency-Key: a response shaped by a rate limit (one
/// address refused, or the whole request) is answered but not stored, so a retry with the
/// same key runs again; an unlimited one is stored and replayed.
#[tokio::test]
async fn rate_limited_answers_are_not_stored_for_their_idempotency_key() {
    let app = spawn_with(|c| c.invitation_sends_per_hour = 1).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let send = |user: &TestUser, key: &'static str, emails: Vec<&'static str>| {
        let req = app
            .http
            .post(format!("{}/graphql", app.url))
            .bearer_auth(&user.token)
            .header("idempotency-key", key)
            .json(&json!({ "query": INVITE, "variables": { "o": user.org_id, "e": emails } }));
        async move {
            let resp = req.send().await.unwrap();
            let replayed = resp.headers().contains_key("idempotent-replayed");
            let status = resp.status().as_u16();
            (status, replayed, resp.json::<Value>().await.unwrap())
        }
    };
    let stored = |key: &'static str| {
        let db = app.app.svc.db.read.clone();
        async move {
            entity::idempotency_keys::Entity::find()
                .filter(entity::idempotency_keys::Column::Key.eq(key))
                .all(&db)
                .await
                .unwrap()
                .len()
        }
    };

    // One address over the hourly budget: a userError in an otherwise good answer.
    let (status, replayed, first) = send(&ana, "k1", vec!["a@x.io", "b@x.io"]).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    let p = &first["data"]["createInvitations"];
    assert_eq!(p["invitations"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(user_error_codes(p), vec!["RATE_LIMITED"]);
    assert_eq!(stored("k1").await, 0, "released, not stored");
    // The retry runs again (nothing is replayed) and is refused as a whole this time.
    let (status, replayed, again) = send(&ana, "k1", vec!["a@x.io", "b@x.io"]).await;
    assert_eq!((status, replayed), (429, false), "{again}");
    assert_eq!(error_codes(&again), vec!["RATE_LIMITED"]);
    assert_eq!(stored("k1").await, 0);

    // Within the budget: stored once, then replayed as it was.
    let (status, replayed, first) = send(&bo, "k2", vec!["c@x.io"]).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    assert_eq!(stored("k2").await, 1);
    let (status, replayed, again) = send(&bo, "k2", vec!["c@x.io"]).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(first, again);
}

/// An invitation's copyable link is its sender's and the admins' to see: another member of
/// the organization sees the invitation without it.
#[tokio::test]
async fn only_the_sender_and_admins_see_an_invitations_link() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let mo = app.sign_up("Mo", "mo@example.com").await;
    let zed = app.sign_up("Zed", "zed@example.com").await;
    for u in [&mo, &zed] {
        app.add_member(&ana.org_id, &u.id, "member").await;
    }
    let mo_in_ana = TestUser {
        org_id: ana.org_id.clone(),
        ..mo.clone()
    };
    let p = invite(&app, &mo_in_ana, &["x@example.com"], None).await;
    assert_eq!(p["userErrors"], json!([]));
    let link = p["invitations"][0]["url"].as_str().unwrap().to_string();
    let url_for = |u: &TestUser| {
        let (token, org) = (u.token.clone(), ana.org_id.clone());
        let app = &app;
        async move {
            let body = app
                .gql(
                    Some(&token),
                    "query($o: ID!) { organization(id: $o) { invitations { nodes { email url } } } }",
                    json!({ "o": org }),
                )
                .await;
            let nodes = &body["data"]["organization"]["invitations"]["nodes"];
            assert_eq!(nodes[0]["email"], "x@example.com", "{body}");
            nodes[0]["url"].clone()
        }
    };
    assert_eq!(url_for(&mo).await, json!(link), "the sender");
    assert_eq!(url_for(&ana).await, json!(link), "an owner");
    assert_eq!(url_for(&zed).await, Value::Null, "another member");
}
