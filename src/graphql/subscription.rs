//! Live activity over graphql-transport-ws.
use async_graphql::{Context, Subscription as GqlSubscription, ID};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{activity::ActivityEvent, auth, error::top_level, svc};
use crate::domain::{
    activity::ActivityType,
    ids::{OrgId, UserId},
    orgs,
};

/// The root subscription type.
#[derive(async_graphql::MergedSubscription, Default)]
pub struct Subscription(OrgSubscription, super::sharing::SharingSubscription);

/// Organization subscriptions.
#[derive(Default)]
pub struct OrgSubscription;

#[GqlSubscription]
impl OrgSubscription {
    /// Live activity of an organization the caller belongs to. The stream ends when the
    /// caller is removed from the organization.
    async fn activity(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ActivityEvent>> {
        let user = auth(ctx).user().map_err(top_level)?;
        let me = UserId(user.id);
        let org = OrgId::parse(&organization_id).map_err(|e| top_level(e.into()))?;
        let svc = svc(ctx).clone();
        // Subscribe before the access check so nothing committed in between is missed.
        let mut rx = svc.bus.subscribe();
        orgs::access(&svc.db.read, me, org)
            .await
            .map_err(top_level)?;
        Ok(async_stream::stream! {
            loop {
                match rx.recv().await {
                    Ok(e) if e.organization_id == org.0 => {
                        let removed_me = e.event_type == ActivityType::MemberRemoved
                            && e.data.get("userId").and_then(|v| v.as_str()) == Some(&me.to_string());
                        yield ActivityEvent(e);
                        if removed_me {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "activity subscriber fell behind");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        })
    }
}
