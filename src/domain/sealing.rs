//! What is stored sealed under the server secret (webhook signing secrets, idempotent
//! responses, the key check), checked at start-up and moved to the current secret by
//! `kfactor secrets reseal`.
//!
//! Start-up refuses a database holding sealed data that no configured secret opens: a
//! server that started anyway would sign webhooks with keys no receiver knows. The key check
//! (a known value sealed under the secret of the first start) catches a changed secret even
//! in a database that holds nothing else sealed yet.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

use super::{idempotency, tokens::Keys};
use crate::{
    crypto::{legacy, OpenError, Purpose},
    db::Db,
};
use entity::{idempotency_keys, settings, webhook_secrets};

/// The `settings` row holding the key check.
pub const KEY_CHECK_SETTING: &str = "sealing_key_check";
const KEY_CHECK_TEXT: &[u8] = b"kfactor key check";
const BATCH: u64 = 500;

/// Counts of one kind of sealed data.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Sealed again under the current secret.
    pub resealed: u64,
    /// Already sealed under the current secret.
    pub current: u64,
    /// Opened by no configured secret (left as they are).
    pub unreadable: u64,
}

/// What [`reseal`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Webhook signing secrets.
    pub webhook_secrets: Counts,
    /// Stored responses of idempotent requests.
    pub idempotent_responses: Counts,
    /// The key check.
    pub key_check: Counts,
}

/// Refuses a database with sealed data that no configured secret opens, converts webhook
/// secrets stored by older versions, and writes the key check on the first start.
pub async fn check_at_start(db: &Db, keys: &Keys, now: DateTime<Utc>) -> anyhow::Result<()> {
    convert_untagged_webhook_secrets(db, keys).await?;
    let ring = keys.ring();
    let mut problems = Vec::new();
    match settings::Entity::find_by_id(KEY_CHECK_SETTING.to_string())
        .one(&db.read)
        .await?
    {
        None => {
            let row = settings::ActiveModel {
                key: Set(KEY_CHECK_SETTING.into()),
                value: Set(ring.seal(Purpose::KeyCheck, b"", KEY_CHECK_TEXT)),
            };
            // Another instance starting at once may have written it first: either is fine.
            let _ = settings::Entity::insert(row)
                .on_conflict_do_nothing()
                .exec_without_returning(&db.write)
                .await?;
        }
        Some(row) => {
            if ring.open(Purpose::KeyCheck, b"", &row.value).is_err() {
                problems.push("the key check".to_string());
            }
        }
    }
    let secrets = each_webhook_secret(db, keys, |_, _| Ok(())).await?;
    if secrets.unreadable > 0 {
        problems.push(format!("{} webhook signing secret(s)", secrets.unreadable));
    }
    // Responses past their lifetime are never replayed again; only live ones must open.
    let live_since = now - Duration::hours(idempotency::TTL_HOURS);
    let responses = each_response(db, keys, Some(live_since), |_, _| Ok(())).await?;
    if responses.unreadable > 0 {
        problems.push(format!(
            "{} stored idempotent response(s)",
            responses.unreadable
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to start: {} in this database were sealed with a server secret that is \
         neither KFACTOR_SECRET nor any of KFACTOR_SECRET_PREVIOUS, so webhooks would be signed \
         with keys no receiver knows. If KFACTOR_SECRET was changed, put the old value into \
         KFACTOR_SECRET_PREVIOUS (comma-separated; a list in kfactor.toml) and start again; \
         `kfactor secrets reseal` then moves the data to the new secret.",
        problems.join(", ")
    )
}

/// Seals everything stored under an older secret or format again under the current secret.
/// Derived tokens (shared links, invitations, email links) are not stored: those made under a
/// previous secret keep verifying only while it stays in `KFACTOR_SECRET_PREVIOUS`.
pub async fn reseal(db: &Db, keys: &Keys) -> anyhow::Result<Report> {
    let ring = keys.ring();
    let webhook_secrets = each_webhook_secret(db, keys, |row, plain| {
        Ok(ring.seal(Purpose::WebhookSecret, row.id.as_bytes(), plain))
    })
    .await?;
    let idempotent_responses = each_response(db, keys, None, |row, plain| {
        let context = idempotency::seal_context(&row.scope, &row.key);
        Ok(ring.seal(Purpose::IdempotentResponse, &context, plain))
    })
    .await?;
    let mut key_check = Counts::default();
    let row = settings::Entity::find_by_id(KEY_CHECK_SETTING.to_string())
        .one(&db.read)
        .await?;
    match row.map(|r| ring.open(Purpose::KeyCheck, b"", &r.value)) {
        Some(Ok(o)) if o.current => key_check.current += 1,
        Some(Err(_)) => key_check.unreadable += 1,
        // Missing or under a previous secret: written under the current one.
        _ => {
            let value = ring.seal(Purpose::KeyCheck, b"", KEY_CHECK_TEXT);
            settings::Entity::insert(settings::ActiveModel {
                key: Set(KEY_CHECK_SETTING.into()),
                value: Set(value),
            })
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(settings::Column::Key)
                    .update_column(settings::Column::Value)
                    .to_owned(),
            )
            .exec_without_returning(&db.write)
            .await?;
            key_check.resealed += 1;
        }
    }
    Ok(Report {
        webhook_secrets,
        idempotent_responses,
        key_check,
    })
}

/// Opens every webhook secret; one not under the current secret is written again with what
/// `rewrite` returns (a `rewrite` returning `()` only counts, as the start-up check does).
/// Updates compare the old ciphertext, so a concurrent change wins.
async fn each_webhook_secret<R: Rewrite>(
    db: &Db,
    keys: &Keys,
    rewrite: impl Fn(&webhook_secrets::Model, &[u8]) -> anyhow::Result<R>,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    let mut pages = webhook_secrets::Entity::find()
        .order_by_asc(webhook_secrets::Column::Id)
        .paginate(&db.read, BATCH);
    while let Some(rows) = pages.fetch_and_next().await? {
        for row in rows {
            match keys
                .ring()
                .open(Purpose::WebhookSecret, row.id.as_bytes(), &row.ciphertext)
            {
                Err(_) => counts.unreadable += 1,
                Ok(o) if o.current => counts.current += 1,
                Ok(o) => {
                    if let Some(new) = rewrite(&row, &o.plaintext)?.value() {
                        webhook_secrets::Entity::update_many()
                            .col_expr(webhook_secrets::Column::Ciphertext, Expr::value(new))
                            .filter(webhook_secrets::Column::Id.eq(row.id))
                            .filter(webhook_secrets::Column::Ciphertext.eq(row.ciphertext))
                            .exec(&db.write)
                            .await?;
                        counts.resealed += 1;
                    } else {
                        counts.current += 1;
                    }
                }
            }
        }
    }
    Ok(counts)
}

/// Like [`each_webhook_secret`] for stored responses (plain JSON ones, from before responses
/// were sealed, count as not current), optionally only those created since `since`.
async fn each_response<R: Rewrite>(
    db: &Db,
    keys: &Keys,
    since: Option<DateTime<Utc>>,
    rewrite: impl Fn(&idempotency_keys::Model, &[u8]) -> anyhow::Result<R>,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    let mut query = idempotency_keys::Entity::find()
        .filter(idempotency_keys::Column::Response.is_not_null())
        .order_by_asc(idempotency_keys::Column::Scope)
        .order_by_asc(idempotency_keys::Column::Key);
    if let Some(since) = since {
        query = query.filter(idempotency_keys::Column::CreatedAt.gt(since));
    }
    let mut pages = query.paginate(&db.read, BATCH);
    while let Some(rows) = pages.fetch_and_next().await? {
        for row in rows {
            let Some(stored) = row.response.clone() else {
                continue;
            };
            let context = idempotency::seal_context(&row.scope, &row.key);
            let opened = if stored.starts_with('{') {
                Ok(crate::crypto::Opened {
                    plaintext: stored.clone().into_bytes(),
                    current: false,
                })
            } else {
                keys.ring()
                    .open(Purpose::IdempotentResponse, &context, &stored)
            };
            match opened {
                Err(_) => counts.unreadable += 1,
                Ok(o) if o.current => counts.current += 1,
                Ok(o) => {
                    if let Some(new) = rewrite(&row, &o.plaintext)?.value() {
                        idempotency_keys::Entity::update_many()
                            .col_expr(idempotency_keys::Column::Response, Expr::value(new))
                            .filter(idempotency_keys::Column::Scope.eq(&row.scope))
                            .filter(idempotency_keys::Column::Key.eq(&row.key))
                            .filter(idempotency_keys::Column::Response.eq(stored))
                            .exec(&db.write)
                            .await?;
                        counts.resealed += 1;
                    } else {
                        counts.current += 1;
                    }
                }
            }
        }
    }
    Ok(counts)
}

/// What a rewrite callback returns: a new sealed value, or `()` to only count.
trait Rewrite {
    fn value(self) -> Option<String>;
}

impl Rewrite for String {
    fn value(self) -> Option<String> {
        Some(self)
    }
}

impl Rewrite for () {
    fn value(self) -> Option<String> {
        None
    }
}

/// Webhook secrets in the untagged format of older versions are sealed again as `v2.`
/// under the current secret. That format opens under any key, so this is only done when no
/// previous secret is configured (the one in `KFACTOR_SECRET` is then the one they were made
/// with, or they were already unusable); otherwise start-up stops and says how to proceed.
async fn convert_untagged_webhook_secrets(db: &Db, keys: &Keys) -> anyhow::Result<()> {
    let rows: Vec<webhook_secrets::Model> = webhook_secrets::Entity::find()
        .filter(webhook_secrets::Column::Ciphertext.not_like("v2.%"))
        .all(&db.read)
        .await?
        .into_iter()
        .filter(|r| legacy::is_untagged_webhook_secret(&r.ciphertext))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    if keys.ring().has_previous() {
        anyhow::bail!(
            "refusing to start: {} webhook signing secret(s) are stored in the format of kfactor \
             versions before sealing v2, which cannot tell which secret sealed them, and \
             KFACTOR_SECRET_PREVIOUS is set. Start this version once with KFACTOR_SECRET set to \
             the secret they were made with and KFACTOR_SECRET_PREVIOUS unset (they are then \
             converted), and rotate after that.",
            rows.len()
        );
    }
    let ring = keys.ring();
    for row in &rows {
        let opened = ring
            .open(Purpose::WebhookSecret, row.id.as_bytes(), &row.ciphertext)
            .map_err(|e: OpenError| anyhow::anyhow!("webhook secret {}: {e}", row.id))?;
        webhook_secrets::Entity::update_many()
            .col_expr(
                webhook_secrets::Column::Ciphertext,
                Expr::value(ring.seal(
                    Purpose::WebhookSecret,
                    row.id.as_bytes(),
                    &opened.plaintext,
                )),
            )
            .filter(webhook_secrets::Column::Id.eq(row.id))
            .filter(webhook_secrets::Column::Ciphertext.eq(&row.ciphertext))
            .exec(&db.write)
            .await?;
    }
    tracing::info!(
        count = rows.len(),
        "webhook signing secrets converted to sealing v2"
    );
    Ok(())
}
