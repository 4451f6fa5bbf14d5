//! Outgoing email. Domain code only *enqueues* (a row in `emails`, in its own transaction,
//! through [`crate::outbox::email`]);
//! this worker sends after commit, with retries and backoff, so a down SMTP server never
//! loses an invitation and never blocks a mutation. Messages are rendered at send time, so
//! the database never holds a token.
use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use lettre::{
    message::{
        header::{HeaderName, HeaderValue},
        Mailbox, MultiPart,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use maud::html;
use sea_orm::{
    sea_query::{Expr, LockBehavior, LockType},
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};

use crate::{
    db::Tx,
    domain::{invitations, orgs::Role, Services},
};
use entity::{emails, enums::EmailStatus, invitations as inv_rows, organizations, users};

mod account;
mod digest;
mod notifications;

/// Attempts before an email is given up (about two hours of backoff in all).
const MAX_ATTEMPTS: i32 = 8;
/// How long a sender holds claimed rows.
const LEASE: i64 = 120;

/// How messages leave the process.
enum Transport {
    /// No SMTP configured: print the message to the log.
    Log,
    /// A real SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// A rendered message.
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// The one-click unsubscribe URL of a bulk email (digest, notifications), sent as
    /// `List-Unsubscribe` with `List-Unsubscribe-Post` (RFC 8058) so mail clients offer
    /// their own unsubscribe button; the URL's POST endpoint needs nothing but its token.
    pub unsubscribe: Option<String>,
}

/// The background sender.
pub struct Mailer {
    svc: Arc<Services>,
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for the configured transport.
    pub fn new(svc: Arc<Services>) -> anyhow::Result<Mailer> {
        let transport = match &svc.config.smtp_url {
            None => Transport::Log,
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("KFACTOR_SMTP_URL: {e}"))?
                    .timeout(Some(StdDuration::from_secs(15)))
                    .build(),
            ),
        };
        let from = svc
            .config
            .smtp_from
            .parse()
            .map_err(|e| anyhow::anyhow!("KFACTOR_SMTP_FROM: {e}"))?;
        Ok(Mailer {
            svc,
            transport,
            from,
        })
    }

    /// Sends what is due whenever woken, and at least every second, until `stop` turns
    /// true; a pass that started (emails being sent) finishes and is recorded first.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.send_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "mailer pass failed"),
            }
            tokio::select! {
                _ = self.svc.bus.mailer_woken() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
            }
        }
    }

    /// Claims due emails (a lease, with SKIP LOCKED on PostgreSQL so instances never share
    /// a row), sends them, and records the outcome. Returns how many were handled.
    pub async fn send_due(&self) -> anyhow::Result<usize> {
        let now = self.svc.now();
        let txn = Tx::begin(&self.svc.db).await?;
        let due = emails::Entity::find()
            .filter(emails::Column::Status.eq(EmailStatus::Pending))
            .filter(emails::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(emails::Column::LockedUntil.is_null())
                    .add(emails::Column::LockedUntil.lt(now)),
            )
            .order_by(emails::Column::NextAttemptAt, Order::Asc)
            .limit(20)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&*txn)
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        emails::Entity::update_many()
            .col_expr(
                emails::Column::LockedUntil,
                Expr::value(now + Duration::seconds(LEASE)),
            )
            .filter(emails::Column::Id.is_in(due.iter().map(|e| e.id)))
            .exec(&*txn)
            .await?;
        txn.commit(&self.svc.bus).await?;

        for email in &due {
            let outcome = match self.render(email).await {
                Ok(Some(msg)) => self.deliver(email, msg).await.map(|_| EmailStatus::Sent),
                Ok(None) => Ok(EmailStatus::Superseded),
                Err(e) => Err(e),
            };
            self.finish(email, outcome).await?;
        }
        Ok(due.len())
    }

    async fn finish(
        &self,
        email: &emails::Model,
        outcome: anyhow::Result<EmailStatus>,
    ) -> anyhow::Result<()> {
        let now = self.svc.now();
        let mut am: emails::ActiveModel = email.clone().into();
        am.locked_until = Set(None);
        am.attempts = Set(email.attempts + 1);
        match outcome {
            Ok(status) => {
                am.status = Set(status);
                am.sent_at = Set((status == EmailStatus::Sent).then_some(now));
                am.last_error = Set(None);
                metrics::counter!("kfactor_emails_total", "kind" => email.kind.clone(), "outcome" => status.as_str()).increment(1);
            }
            Err(e) => {
                let attempts = email.attempts + 1;
                let given_up = attempts >= MAX_ATTEMPTS;
                // 30 s, 1 min, 2 min … capped at an hour.
                let backoff = Duration::seconds((30i64 << (attempts - 1).min(7)).min(3600));
                am.status = Set(if given_up {
                    EmailStatus::Failed
                } else {
                    EmailStatus::Pending
                });
                am.next_attempt_at = Set(now + backoff);
                am.last_error = Set(Some(format!("{e:#}").chars().take(1000).collect()));
                tracing::warn!(email_id = %email.id, kind = %email.kind, attempts, given_up, error = %format!("{e:#}"), "sending email failed");
                metrics::counter!("kfactor_emails_total", "kind" => email.kind.clone(), "outcome" => if given_up { "failed" } else { "retry" })
                    .increment(1);
            }
        }
        am.update(&self.svc.db.write).await?;
        Ok(())
    }

    async fn deliver(&self, email: &emails::Model, msg: Rendered) -> anyhow::Result<()> {
        match &self.transport {
            Transport::Log => {
                tracing::info!(to = %email.recipient, subject = %msg.subject, body = %msg.text, "email (log transport; set KFACTOR_SMTP_URL to send)");
                Ok(())
            }
            Transport::Smtp(smtp) => {
                let mut builder = Message::builder()
                    .from(self.from.clone())
                    .to(email.recipient.parse()?)
                    .subject(msg.subject)
                    .message_id(None);
                if let Some(url) = msg.unsubscribe {
                    builder = builder
                        .raw_header(HeaderValue::new(
                            HeaderName::new_from_ascii_str("List-Unsubscribe"),
                            format!("<{url}>"),
                        ))
                        .raw_header(HeaderValue::new(
                            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                            "List-Unsubscribe=One-Click".into(),
                        ));
                }
                let message =
                    builder.multipart(MultiPart::alternative_plain_html(msg.text, msg.html))?;
                smtp.send(message).await?;
                Ok(())
            }
        }
    }

    /// Renders an email, or None when what it was about has changed since (a newer re-send
    /// superseded it, or the invitation was revoked or used).
    async fn render(&self, email: &emails::Model) -> anyhow::Result<Option<Rendered>> {
        match email.kind.as_str() {
            "invitation" => self.render_invitation(email).await,
            "verify_email" | "email_change" | "password_reset" => {
                account::render(&self.svc, email).await
            }
            crate::domain::digest::EMAIL_KIND => digest::render(&self.svc, email).await,
            crate::domain::notifications::email::EMAIL_KIND => {
                notifications::render(&self.svc, email).await
            }
            other => anyhow::bail!("unknown email kind {other}"),
        }
    }

    async fn render_invitation(&self, email: &emails::Model) -> anyhow::Result<Option<Rendered>> {
        let db = &self.svc.db.read;
        let Some(inv) = inv_rows::Entity::find_by_id(email.subject_id)
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let now = self.svc.now();
        if inv.token_version != email.subject_version
            || invitations::status(&inv, now) != invitations::Status::Pending
        {
            return Ok(None);
        }
        let org = organizations::Entity::find_by_id(inv.organization_id)
            .one(db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("organization of invitation {} is gone", inv.id))?;
        let inviter = users::Entity::find_by_id(inv.invited_by_user_id)
            .one(db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("inviter of invitation {} is gone", inv.id))?;
        // Nobody is invited by a deleted account or into an organization being deleted.
        if inviter.deleted_at.is_some() || org.deletion_scheduled_for.is_some() {
            return Ok(None);
        }
        Ok(Some(invitation_message(
            &inviter.name,
            &org.name,
            inv.role,
            &invitations::email_link(&self.svc, &inv),
            inv.expires_at,
        )))
    }
}

/// The invitation email: who invited you to what, the link and when it expires.
pub fn invitation_message(
    inviter: &str,
    org: &str,
    role: Role,
    link: &str,
    expires: DateTime<Utc>,
) -> Rendered {
    // Names are cleaned when stored; rows older than that rule are cleaned here too.
    let (inviter, org) = (
        &crate::domain::identity::clean_name(inviter),
        &crate::domain::identity::clean_name(org),
    );
    let role = role.as_str();
    let expiry = expires.format("%B %-d, %Y at %H:%M UTC").to_string();
    let subject = format!("{inviter} invited you to join {org}");
    let text = format!(
        "{inviter} invited you to join {org} as {role}.\n\nAccept the invitation:\n{link}\n\nThis invitation expires on {expiry}. If you did not expect it, you can ignore this email.\n"
    );
    let html = html! {
        p { strong { (inviter) } " invited you to join " strong { (org) } " as " (role) "." }
        p { a href=(link) style="display:inline-block;padding:10px 16px;background:#4f46e5;color:#fff;border-radius:6px;text-decoration:none" { "Accept the invitation" } }
        p style="color:#555" { "Or open this link: " a href=(link) { (link) } }
        p style="color:#555" { "This invitation expires on " (expiry) ". If you did not expect it, you can ignore this email." }
    }
    .into_string();
    Rendered {
        subject,
        text,
        html,
        unsubscribe: None,
    }
}

/// Starts the mailer in the background.
pub fn spawn(
    svc: Arc<Services>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mailer = Mailer::new(svc)?;
    Ok(tokio::spawn(mailer.run(stop)))
}
