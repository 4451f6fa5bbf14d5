//! Server-to-server API keys (`kfk_…`): created, listed and revoked by operators on the
//! command line, sent as `Authorization: Bearer kfk_…`. Like session tokens they are random
//! and only their SHA-256 is stored, so the database never holds a usable key; the key is
//! shown once, at creation. What a key may do is its scopes (see [`super::access`]).
use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    EntityTrait, Order, QueryFilter, QueryOrder,
};
use serde_json::json;

use super::{
    access::{ApiKey, Scope},
    identity::Name,
    ids::ApiKeyId,
    tokens, DomainError, DomainResult, Services,
};
use crate::db::Db;
use entity::api_keys;

/// What every API key starts with (how the auth extractor tells keys from sessions).
pub const PREFIX: &str = "kfk_";

/// How often a key's `last_used_at` is written at most.
const LAST_USED_EVERY: Duration = Duration::seconds(60);

/// The scopes stored on a key row (unknown names, e.g. from a newer version, grant nothing).
pub fn scopes_of(k: &api_keys::Model) -> BTreeSet<Scope> {
    k.scopes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| serde_json::from_value(s.clone()).ok())
        .collect()
}

/// Creates a key; returns its row and the key itself (shown this once).
pub async fn create(
    svc: &Services,
    name: &str,
    scopes: &[Scope],
) -> DomainResult<(api_keys::Model, String)> {
    let name = Name::parse(name, "name")?;
    let scopes: BTreeSet<Scope> = scopes.iter().copied().collect();
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let row = api_keys::ActiveModel {
        id: Set(ApiKeyId::generate()),
        name: Set(name.as_str().to_string()),
        token_hash: Set(tokens::session_token_hash(&token)),
        scopes: Set(json!(scopes)),
        created_at: Set(svc.now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&svc.db.write)
    .await?;
    Ok((row, token))
}

/// Every key, oldest first (revoked ones too, marked).
pub async fn list(db: &impl ConnectionTrait) -> DomainResult<Vec<api_keys::Model>> {
    Ok(api_keys::Entity::find()
        .order_by(api_keys::Column::Id, Order::Asc)
        .all(db)
        .await?)
}

/// Revokes a key: it stops working at once. Revoking a revoked key changes nothing.
pub async fn revoke(svc: &Services, id: ApiKeyId) -> DomainResult<api_keys::Model> {
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(svc.now()))
        .filter(api_keys::Column::Id.eq(id.0))
        .filter(api_keys::Column::RevokedAt.is_null())
        .exec(&svc.db.write)
        .await?;
    api_keys::Entity::find_by_id(id.0)
        .one(&svc.db.write)
        .await?
        .ok_or(DomainError::NotFound("API key"))
}

/// The key behind a bearer token: one lookup by hash. Its last-used time is written in the
/// background (the request does not wait for it), at most once a minute per key.
pub async fn authenticate(svc: &Services, token: &str) -> DomainResult<ApiKey> {
    const INVALID: &str = "This API key is not valid.";
    let row = api_keys::Entity::find()
        .filter(api_keys::Column::TokenHash.eq(tokens::session_token_hash(token.trim())))
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::Unauthenticated(INVALID))?;
    if row.revoked_at.is_some() {
        return Err(DomainError::Unauthenticated("This API key was revoked."));
    }
    svc.api_key_usage
        .note(&svc.db, row.id, row.last_used_at, svc.now());
    Ok(ApiKey {
        id: row.id,
        name: row.name.clone(),
        scopes: scopes_of(&row),
    })
}

/// Records keys' last use off the request path: a write is started in the background when
/// the stored time is a minute old, and a burst of requests with one key starts one write.
#[derive(Clone, Default)]
pub struct UsageRecorder {
    started: Arc<Mutex<HashMap<ApiKeyId, DateTime<Utc>>>>,
}

impl UsageRecorder {
    fn note(&self, db: &Db, key: ApiKeyId, stored: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let fresh = |t: DateTime<Utc>| now - t < LAST_USED_EVERY;
        if stored.is_some_and(fresh) {
            return;
        }
        {
            let mut started = self.started.lock().expect("usage lock");
            if started.get(&key).copied().is_some_and(fresh) {
                return;
            }
            started.insert(key, now);
        }
        let db = db.write.clone();
        tokio::spawn(async move {
            let written = api_keys::Entity::update_many()
                .col_expr(api_keys::Column::LastUsedAt, Expr::value(now))
                .filter(api_keys::Column::Id.eq(key))
                .filter(
                    Condition::any()
                        .add(api_keys::Column::LastUsedAt.is_null())
                        .add(api_keys::Column::LastUsedAt.lt(now)),
                )
                .exec(&db)
                .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, "recording an API key's last use failed");
            }
        });
    }
}
