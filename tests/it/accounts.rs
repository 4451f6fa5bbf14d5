//! Verified addresses: the signup verification link, the impersonation path through a
//! copied invitation link, the emailed invitation link that verifies at once.
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{json, Value};

use crate::{
    helpers::{
        error_codes,
        smtp::{decode_qp, SmtpSink},
        spawn_with, user_error_codes, TestApp, TestUser,
    },
    invitations::token_of,
};
use kfactor::config::Rate;

pub const PASSWORD: &str = "correct horse battery";
const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) {
  token user { id emailVerifiedAt memberships { role organization { id } } } organization { id name } userErrors { code message } } }";
const INVITE: &str = "mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) {
  invitations { id url } userErrors { code message } } }";
const VERIFY: &str = "mutation($t: String!) { verifyEmail(token: $t, password: \"correct horse battery\") { token user { id email emailVerifiedAt } organization { id name viewerRole } userErrors { code message } } }";

/// A server whose emails go to a real SMTP sink.
pub async fn spawn_mailing(
    tweak: impl FnOnce(&mut kfactor::config::Config),
) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start(0).await;
    let url = sink.url();
    let app = spawn_with(move |c| {
        c.smtp_url = Some(url);
        tweak(c);
    })
    .await;
    (app, sink)
}

/// The decoded messages sent to `to` so far.
pub fn mails_to(sink: &SmtpSink, to: &str) -> Vec<String> {
    sink.mails()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .map(|m| decode_qp(&m.data))
        .collect()
}

/// Waits (10 s at most) for a message to `to` whose text contains `needle`.
pub async fn mail_to(sink: &SmtpSink, to: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        if let Some(m) = mails_to(sink, to).into_iter().find(|m| m.contains(needle)) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail to {to} containing {needle:?}: {:?}",
            sink.mails()
        );
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

/// The token at the end of the first link in `mail` that starts with `prefix`.
pub fn token_in(mail: &str, prefix: &str) -> String {
    mail.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} link in {mail}"))
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

async fn sign_up(app: &TestApp, email: &str, invite: Option<&str>) -> Value {
    app.gql(
        None,
        SIGN_UP,
        json!({ "i": { "email": email, "password": PASSWORD, "name": email.split('@').next().unwrap(), "inviteToken": invite } }),
    )
    .await["data"]["signUp"]
        .clone()
}

async fn member_ids(app: &TestApp, owner: &TestUser) -> Vec<String> {
    let b = app
        .gql(
            Some(&owner.token),
            "query($o: ID!) { organization(id: $o) { members { nodes { user { id } } } } }",
            json!({ "o": owner.org_id }),
        )
        .await;
    b["data"]["organization"]["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["user"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_signup_gets_a_verification_link_that_works_once_and_expires() {
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let me = app
        .gql(Some(&ana.token), "{ me { emailVerifiedAt } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["emailVerifiedAt"], Value::Null);

    let mail = mail_to(&sink, "ana@example.com", "Confirm your email address").await;
    let token = token_in(&mail, &format!("{}/verify-email/", app.url));
    // The link is a page whose form confirms (opening it changes nothing).
    let page = app
        .form_post(
            &format!("/verify-email/{token}"),
            &[("password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(page.status().as_u16(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("ana@example.com is confirmed"));
    let me = app
        .gql(Some(&ana.token), "{ me { emailVerifiedAt } }", json!({}))
        .await;
    assert!(me["data"]["me"]["emailVerifiedAt"].is_string(), "{me}");

    // Single use.
    let again = app.gql(None, VERIFY, json!({ "t": token })).await;
    assert_eq!(
        user_error_codes(&again["data"]["verifyEmail"]),
        vec!["TOKEN_ALREADY_USED"]
    );
    let page = app
        .http
        .get(format!("{}/verify-email/{token}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 410);
    // A forged one (another last character, never the same one) names nothing.
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let forged = app
        .gql(
            None,
            VERIFY,
            json!({ "t": format!("{}{last}", &token[..token.len() - 1]) }),
        )
        .await;
    assert_eq!(
        user_error_codes(&forged["data"]["verifyEmail"]),
        vec!["NOT_FOUND"]
    );

    // Links expire after 48 hours.
    let bo = app.sign_up("Bo", "bo@example.com").await;
    let mail = mail_to(&sink, "bo@example.com", "Confirm your email address").await;
    let token = token_in(&mail, &format!("{}/verify-email/", app.url));
    app.clock.advance(Duration::hours(48));
    let late = app.gql(None, VERIFY, json!({ "t": token })).await;
    assert_eq!(
        user_error_codes(&late["data"]["verifyEmail"]),
        vec!["TOKEN_EXPIRED"]
    );
    let me = app
        .gql(Some(&bo.token), "{ me { emailVerifiedAt } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["emailVerifiedAt"], Value::Null);
}

#[tokio::test]
async fn a_copied_invitation_link_cannot_make_a_member_the_cfo_and_the_emailed_link_takes_one_step()
{
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@acme.io").await;
    let mallory = app.sign_up("Mallory", "mallory@acme.io").await;
    app.add_member(&ana.org_id, &mallory.id, "member").await;
    let mallory = TestUser {
        org_id: ana.org_id.clone(),
        ..mallory
    };

    // Mallory invites the CFO's address and reads the invitation's URL from the API...
    let p = app
        .gql(
            Some(&mallory.token),
            INVITE,
            json!({ "o": ana.org_id, "e": ["cfo@acme.io"] }),
        )
        .await;
    let copied = token_of(&p["data"]["createInvitations"]["invitations"][0]);
    // ...and signs up through it as the CFO: the account exists, but joins nothing.
    let s = sign_up(&app, "cfo@acme.io", Some(&copied)).await;
    assert_eq!(user_error_codes(&s), vec!["EMAIL_NOT_VERIFIED"], "{s}");
    let message = s["userErrors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("cfo@acme.io") && message.contains("Ana's workspace"),
        "{message}"
    );
    assert_eq!(s["organization"], Value::Null);
    assert_eq!(s["user"]["memberships"], json!([]));
    let fake_cfo = s["user"]["id"].as_str().unwrap().to_string();
    assert!(!member_ids(&app, &ana).await.contains(&fake_cfo));
    // Accepting with the copied link as that account does not work either.
    let token = s["token"].as_str().unwrap();
    let a = app
        .gql(Some(token), "mutation($t: String!) { acceptInvitation(token: $t) { membership { role } userErrors { code message } } }", json!({ "t": copied }))
        .await;
    assert_eq!(
        user_error_codes(&a["data"]["acceptInvitation"]),
        vec!["EMAIL_NOT_VERIFIED"]
    );
    assert!(!member_ids(&app, &ana).await.contains(&fake_cfo));
    // The verification link went to the real CFO's mailbox, where Mallory cannot read it.
    mail_to(&sink, "cfo@acme.io", "Confirm your email address").await;

    // Bo, invited the same way, signs up from the link in his email: one step, verified.
    app.gql(
        Some(&mallory.token),
        INVITE,
        json!({ "o": ana.org_id, "e": ["bo@acme.io"] }),
    )
    .await;
    let mail = mail_to(&sink, "bo@acme.io", "invited you to join").await;
    let emailed = token_in(&mail, &format!("{}/invite/", app.url));
    let s = sign_up(&app, "bo@acme.io", Some(&emailed)).await;
    assert_eq!(s["userErrors"], json!([]), "{s}");
    assert_eq!(s["organization"]["id"], ana.org_id.as_str());
    assert!(s["user"]["emailVerifiedAt"].is_string());
    assert!(member_ids(&app, &ana)
        .await
        .contains(&s["user"]["id"].as_str().unwrap().to_string()));
    // The email was the proof: no verification email is queued for Bo.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let queued = entity::emails::Entity::find()
        .filter(entity::emails::Column::Recipient.eq("bo@acme.io"))
        .all(&app.app.svc.db.read)
        .await
        .unwrap();
    let kinds: Vec<&str> = queued.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["invitation"]);
}

#[tokio::test]
async fn a_signup_through_a_copied_link_joins_once_the_address_is_verified() {
    let (app, sink) = spawn_mailing(|_| {}).await;
    let ana = app.sign_up("Ana", "ana@acme.io").await;
    let p = app
        .gql(
            Some(&ana.token),
            INVITE,
            json!({ "o": ana.org_id, "e": ["cy@acme.io"] }),
        )
        .await;
    let copied = token_of(&p["data"]["createInvitations"]["invitations"][0]);
    let s = sign_up(&app, "cy@acme.io", Some(&copied)).await;
    assert_eq!(user_error_codes(&s), vec!["EMAIL_NOT_VERIFIED"]);

    let mail = mail_to(&sink, "cy@acme.io", "Confirm your email address").await;
    let token = token_in(&mail, &format!("{}/verify-email/", app.url));
    let v = app.gql(None, VERIFY, json!({ "t": token })).await;
    let v = &v["data"]["verifyEmail"];
    assert_eq!(v["userErrors"], json!([]), "{v}");
    assert_eq!(v["organization"]["id"], ana.org_id.as_str());
    assert_eq!(v["organization"]["viewerRole"], "MEMBER");
    // Confirmed with the password: the sessions from before ended, here is a new one.
    let cy_token = v["token"].as_str().expect("a new session").to_string();
    let me = app
        .gql(Some(&cy_token), "{ me { acquisitionSource activeOrganization { id } memberships { organization { id } } } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"]["activeOrganization"]["id"],
        ana.org_id.as_str()
    );
    assert_eq!(me["data"]["me"]["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(me["data"]["me"]["acquisitionSource"], "INVITE");
}

#[tokio::test]
async fn an_unverified_account_accepts_only_with_the_emailed_link_and_resends_are_limited() {
    let (app, sink) = spawn_mailing(|c| {
        c.safety.verification_emails_per_address = Some(Rate::new(2, StdDuration::from_secs(3600)))
    })
    .await;
    let ana = app.sign_up("Ana", "ana@acme.io").await;
    let bo = app.sign_up("Bo", "bo@acme.io").await; // existed before, never verified
    let p = app
        .gql(
            Some(&ana.token),
            INVITE,
            json!({ "o": ana.org_id, "e": ["bo@acme.io"] }),
        )
        .await;
    let copied = token_of(&p["data"]["createInvitations"]["invitations"][0]);
    let accept = |t: String| {
        let app = &app;
        let bo = bo.token.clone();
        async move {
            app.gql(Some(&bo), "mutation($t: String!) { acceptInvitation(token: $t) { membership { role } userErrors { code message } } }", json!({ "t": t }))
                .await["data"]["acceptInvitation"]
                .clone()
        }
    };
    let a = accept(copied.clone()).await;
    assert_eq!(user_error_codes(&a), vec!["EMAIL_NOT_VERIFIED"]);
    assert!(a["userErrors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("we sent a link to bo@acme.io"));

    // Resending: one more fits the per-address budget (the refusal above sent one)...
    let resend = "mutation { resendVerificationEmail { ok userErrors { code } } }";
    let r = app.gql(Some(&bo.token), resend, json!({})).await;
    assert_eq!(r["data"]["resendVerificationEmail"]["ok"], true);
    let (status, r) = app.post(Some(&bo.token), resend, json!({})).await;
    assert_eq!(
        (status, error_codes(&r)),
        (429, vec!["RATE_LIMITED".to_string()])
    );
    // ...and the invitation's own email proves the address.
    let mail = mail_to(&sink, "bo@acme.io", "invited you to join").await;
    let emailed = token_in(&mail, &format!("{}/invite/", app.url));
    let a = accept(emailed).await;
    assert_eq!(a["userErrors"], json!([]), "{a}");
    assert_eq!(a["membership"]["role"], "MEMBER");
    let me = app
        .gql(Some(&bo.token), "{ me { emailVerifiedAt } }", json!({}))
        .await;
    assert!(me["data"]["me"]["emailVerifiedAt"].is_string());
    app.clock.advance(Duration::hours(1));
    let r = app.gql(Some(&bo.token), resend, json!({})).await;
    assert_eq!(
        user_error_codes(&r["data"]["resendVerificationEmail"]),
        vec!["INVALID_INPUT"]
    );
}

#[tokio::test]
async fn unverified_senders_have_a_smaller_invitation_budget() {
    let (app, sink) = spawn_mailing(|c| {
        c.invitation_sends_per_hour = 4;
        c.safety.unverified_invitation_sends_per_hour = 2;
    })
    .await;
    let ana = app.sign_up("Ana", "ana@acme.io").await;
    let emails: Vec<String> = (0..4).map(|i| format!("p{i}@x.io")).collect();
    let p = app
        .gql(
            Some(&ana.token),
            INVITE,
            json!({ "o": ana.org_id, "e": emails[..3] }),
        )
        .await;
    let p = &p["data"]["createInvitations"];
    assert_eq!(p["invitations"].as_array().unwrap().len(), 2);
    assert_eq!(user_error_codes(p), vec!["RATE_LIMITED"]);
    let mail = mail_to(&sink, "ana@acme.io", "Confirm your email address").await;
    let token = token_in(&mail, &format!("{}/verify-email/", app.url));
    app.gql(None, VERIFY, json!({ "t": token })).await;
    let p = app
        .gql(
            Some(&ana.token),
            INVITE,
            json!({ "o": ana.org_id, "e": emails[2..] }),
        )
        .await;
    assert_eq!(
        p["data"]["createInvitations"]["invitations"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{p}"
    );
}
