//! Health: an endpoint that keeps failing is marked, and disabled after a 410 or days of
//! failures.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::json;

use super::{Dispatcher, DISABLE_AFTER_DAYS};
use crate::{
    db::Tx,
    domain::activity::ActivityType,
    outbox::{self, Actor, Event},
};
use entity::webhook_endpoints as endpoints;

/// What a batch's attempts say about one endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Health {
    /// Some attempt succeeded.
    pub(super) any_ok: bool,
    /// The attempt that finished last succeeded.
    pub(super) last_ok: bool,
    /// Some attempt was answered 410 Gone.
    pub(super) gone: bool,
}

impl Dispatcher {
    /// Marks an endpoint failing, and disables it after a 410 or five days of failures.
    pub(super) async fn endpoint_failed(
        &self,
        tx: &mut Tx,
        e: endpoints::Model,
        h: Health,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        // A success earlier in the batch ended the old streak: the new one starts now.
        let since = if h.any_ok { None } else { e.failing_since };
        let reason = if h.gone {
            Some("The endpoint answered 410 Gone.".to_string())
        } else {
            match since {
                Some(since) if now - since >= Duration::days(DISABLE_AFTER_DAYS) => Some(format!(
                    "Every attempt failed for {DISABLE_AFTER_DAYS} days (since {}).",
                    since.format("%Y-%m-%d %H:%M UTC")
                )),
                _ => None,
            }
        };
        let mut am: endpoints::ActiveModel = e.clone().into();
        if since.is_none() {
            am.failing_since = Set(Some(now));
        }
        if let (Some(reason), true) = (&reason, e.enabled) {
            am.enabled = Set(false);
            am.disabled_reason = Set(Some(reason.clone()));
            am.updated_at = Set(now);
            disabled_event(tx, now, &e, reason).await?;
        }
        am.update(&**tx).await?;
        Ok(())
    }
}

/// Records the WEBHOOK_DISABLED activity of an org endpoint (platform endpoints have no feed;
/// they are logged).
async fn disabled_event(
    tx: &mut Tx,
    now: DateTime<Utc>,
    e: &endpoints::Model,
    reason: &str,
) -> anyhow::Result<()> {
    let id = e.id;
    tracing::warn!(endpoint_id = %id, url = %e.url, reason, "webhook endpoint disabled");
    metrics::counter!("kfactor_webhook_endpoints_disabled_total").increment(1);
    if let Some(org) = e.organization_id {
        outbox::record(
            tx,
            now,
            Event {
                org,
                kind: ActivityType::WebhookDisabled,
                actor: Actor::default(),
                resource: None,
                summary: format!("Webhooks to {} were disabled: {reason}", e.url),
                data: json!({ "endpointId": id.to_string(), "url": e.url, "reason": reason }),
                webhook: None,
            },
        )
        .await?;
    }
    Ok(())
}
