//! Endpoint signing secrets: sealed at rest, rotated with a grace period, opened for signing.
use entity::ids::WebhookSecretId;
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait,
    Order, QueryFilter, QueryOrder,
};

use super::*;
use crate::domain::{access::Caller, ids::WebhookEndpointId, DomainError, DomainResult, Services};
use crate::{
    crypto::{signing, Purpose as SealPurpose},
    db::Tx,
};
use entity::{webhook_endpoints as endpoints, webhook_secrets as secrets};

/// The keys that sign deliveries to each of `endpoints` now: the current one first, then
/// each unexpired old one, newest first.
pub async fn signing_keys(
    svc: &Services,
    db: &impl ConnectionTrait,
    endpoints: impl IntoIterator<Item = WebhookEndpointId>,
    now: DateTime<Utc>,
) -> DomainResult<HashMap<WebhookEndpointId, Vec<signing::SigningKey>>> {
    let rows = secrets::Entity::find()
        .filter(secrets::Column::EndpointId.is_in(endpoints))
        .filter(
            sea_orm::Condition::any()
                .add(secrets::Column::ExpiresAt.is_null())
                .add(secrets::Column::ExpiresAt.gt(now)),
        )
        // The current secret (no expiry) first, then the old ones, newest first.
        .order_by(secrets::Column::ExpiresAt.is_null(), Order::Desc)
        .order_by(secrets::Column::Id, Order::Desc)
        .all(db)
        .await?;
    let mut keys: HashMap<WebhookEndpointId, Vec<signing::SigningKey>> = HashMap::new();
    for r in rows {
        // A secret that does not open is an error, never a key: signing with garbage would
        // send deliveries no receiver can verify. Start-up refuses such a database, so this
        // only fires when the data changed under a running server.
        let opened = svc
            .keys
            .ring()
            .open(SealPurpose::WebhookSecret, r.id.as_bytes(), &r.ciphertext)
            .map_err(|e| anyhow::anyhow!("webhook secret {} does not open: {e}", r.id))?;
        keys.entry(r.endpoint_id)
            .or_default()
            .push(signing::SigningKey::from_bytes(opened.plaintext));
    }
    Ok(keys)
}

pub(super) async fn add_secret(
    svc: &Services,
    tx: &Tx,
    endpoint: WebhookEndpointId,
    now: DateTime<Utc>,
) -> DomainResult<String> {
    let key = signing::SigningKey::generate();
    let id = WebhookSecretId::generate();
    secrets::ActiveModel {
        id: Set(id),
        endpoint_id: Set(endpoint),
        ciphertext: Set(svc.keys.ring().seal(
            SealPurpose::WebhookSecret,
            id.as_bytes(),
            key.bytes(),
        )),
        created_at: Set(now),
        expires_at: Set(None),
    }
    .insert(&**tx)
    .await?;
    Ok(key.reveal())
}

/// Replaces the current secret. The old one keeps signing (a second signature) until
/// `grace_seconds` from now; at most [`MAX_OLD_SECRETS`] old secrets are kept.
pub async fn rotate_secret(
    svc: &Services,
    caller: Caller<'_>,
    id: WebhookEndpointId,
    grace_seconds: i64,
) -> DomainResult<(endpoints::Model, String)> {
    if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
        return Err(DomainError::invalid(
            &["expireOldAfterSeconds"],
            format!("Keep the old secret for 0 to {MAX_GRACE_SECONDS} seconds."),
        ));
    }
    let now = svc.now();
    let tx = Tx::begin(&svc.db).await?;
    let e = manageable(&*tx, caller, id).await?;
    secrets::Entity::update_many()
        .col_expr(
            secrets::Column::ExpiresAt,
            Expr::value(now + Duration::seconds(grace_seconds)),
        )
        .filter(secrets::Column::EndpointId.eq(e.id))
        .filter(secrets::Column::ExpiresAt.is_null())
        .exec(&*tx)
        .await?;
    // Expired secrets sign nothing any more; beyond the newest ten, old ones go too.
    let old = secrets::Entity::find()
        .filter(secrets::Column::EndpointId.eq(e.id))
        .filter(secrets::Column::ExpiresAt.is_not_null())
        .order_by(secrets::Column::Id, Order::Desc)
        .all(&*tx)
        .await?;
    let drop: Vec<WebhookSecretId> = old
        .iter()
        .enumerate()
        .filter(|(i, s)| *i >= MAX_OLD_SECRETS || s.expires_at.is_some_and(|x| x <= now))
        .map(|(_, s)| s.id)
        .collect();
    if !drop.is_empty() {
        secrets::Entity::delete_many()
            .filter(secrets::Column::Id.is_in(drop))
            .exec(&*tx)
            .await?;
    }
    let secret = add_secret(svc, &tx, e.id, now).await?;
    tx.commit(&svc.bus).await?;
    Ok((e, secret))
}
