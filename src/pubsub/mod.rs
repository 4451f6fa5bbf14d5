//! Fan-out across instances (PostgreSQL): a worker that listens to the other instances'
//! announcements and republishes what they committed on this instance's [`Bus`], so a
//! subscriber connected to any instance sees every change and new webhook messages wake
//! every dispatcher. It reads what the domain wrote; nothing below it imports it.
use std::{sync::Arc, time::Duration};

use sea_orm::{
    sqlx::postgres::PgListener, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};

use crate::db::bus::CHANNEL;

pub mod live;

pub use crate::db::bus::{ActivityMessage, Bus, Feed, Guard, Revocation};

/// Listens to the other instances' announcements until aborted, reconnecting when the
/// connection drops. Activity announced while disconnected is missed (the feed is live, and
/// the `activity` connection has everything); access changes may have been missed too, so
/// every live stream checks its access again on each (re)connect, and changes to what caches
/// hold too, so each (re)connect drops every cached entry and none is served while the
/// listener is down.
pub async fn listen(bus: Bus, url: String, db: DatabaseConnection) {
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    // Only after LISTEN took effect: a change committed from now on is heard,
                    // one committed before is found by the check (and is not in any cache).
                    bus.recheck_all();
                    bus.hearing(true);
                    loop {
                        // `try_recv` (unlike `recv`) says when the connection dropped; it
                        // answers once it has listened again, and what was announced meanwhile
                        // is lost, so every stream checks its access again.
                        match listener.try_recv().await {
                            Ok(Some(n)) => republish(&bus, &db, n.payload()).await,
                            Ok(None) => {
                                tracing::warn!(
                                    "the listener connection dropped and was re-established"
                                );
                                bus.hearing(true);
                                bus.recheck_all();
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "listening for other instances failed");
                                bus.hearing(false);
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
            },
            Err(e) => tracing::warn!(error = %e, "connecting the listener failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Tells the other instances of this one's presence changes until aborted, retrying when
/// the database connection fails (changes queued meanwhile are sent late or, past the
/// queue's bound, dropped: presence is repaired by the next update).
pub async fn relay_presence(bus: Bus, db: DatabaseConnection) {
    loop {
        if let Err(e) = bus.relay_presence(&db).await {
            tracing::warn!(error = %e, "relaying presence to other instances failed");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes here what another instance announced.
async fn republish(bus: &Bus, db: &DatabaseConnection, payload: &str) {
    let activity = bus.heard(payload);
    if activity.is_empty() {
        return;
    }
    match entity::activity_events::Entity::find()
        .filter(entity::activity_events::Column::Id.is_in(activity))
        .order_by_asc(entity::activity_events::Column::Id)
        .all(db)
        .await
    {
        Ok(rows) => bus.publish(rows.into_iter().map(Arc::new)),
        Err(e) => tracing::warn!(error = %e, "loading announced activity failed"),
    }
}
