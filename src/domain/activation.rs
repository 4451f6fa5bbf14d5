//! Activation (METRICS.md): the first time a user does one of the configured activation
//! actions (`KFACTOR_ACTIVATION_EVENTS`; a first project or comment by default),
//! `activated_at` is set once and a `user.activated` webhook message is written, in the
//! transaction of that action.
use chrono::{DateTime, Utc};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::{
    ids::OrgId,
    metrics::{
        probe::{Probe, Scopes},
        sql::Only,
    },
    DomainResult, Services,
};
use crate::db::Tx;
use crate::{
    config::ActivationEvent,
    outbox::{self, WebhookEvent},
};
use entity::users;

/// Records that `user` did `event` in `org`; activates them if it is an activation event and
/// they were not activated yet.
pub(crate) async fn on(
    tx: &mut Tx,
    svc: &Services,
    event: ActivationEvent,
    now: DateTime<Utc>,
    user: &users::Model,
    org: OrgId,
) -> DomainResult<()> {
    if user.activated_at.is_some() || !svc.config.activation_events.contains(&event) {
        return Ok(());
    }
    // The invitations this user accepted now count as activated in their funnels.
    let probe = Probe::open(
        tx,
        svc,
        Only {
            accepted_by: vec![user.id],
            ..Only::default()
        },
        &[user.id],
        Scopes::Both,
    )
    .await?;
    // Conditional: of two concurrent first actions, one activates.
    let res = users::Entity::update_many()
        .col_expr(users::Column::ActivatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::ActivatedAt.is_null())
        .exec(&**tx)
        .await?;
    if res.rows_affected == 1 {
        probe.close(tx, svc).await?;
        let source = user.acquisition_source;
        outbox::webhook(
            tx,
            now,
            Some(org),
            WebhookEvent {
                event_type: "user.activated",
                data: json!({
                    "user_id": user.id.to_string(),
                    "organization_id": org.to_string(),
                    "source": source.as_str().to_uppercase(),
                }),
            },
        )
        .await?;
    }
    Ok(())
}
