//! Live activity over graphql-transport-ws. Each stream reads its organization's feed only,
//! and is guarded (`pubsub::live`): a change of the caller's access (log-out, a session
//! ended elsewhere, removal from the organization, a revoked or expired link) ends it at
//! once with the reason as its last result, on every instance; so does falling too far
//! behind (`LAGGED`), rather than skipping events silently.
use async_graphql::{Context, Subscription as GqlSubscription, ID};
use futures_util::{future::BoxFuture, Stream, StreamExt};

use super::{
    activity::ActivityEvent,
    auth,
    error::{top, top_level, TopLevelCode},
    svc, Auth,
};
use crate::{
    domain::{
        activity::ActivityType,
        identity,
        ids::{OrgId, UserId},
        orgs, sharing, DomainError, Services,
    },
    pubsub::{
        live::{self, Ended, Verified},
        ActivityMessage, Revocation,
    },
};

/// The root subscription type.
#[derive(async_graphql::MergedSubscription, Default)]
pub struct Subscription(
    OrgSubscription,
    super::sharing::SharingSubscription,
    super::notifications::NotificationSubscription,
    super::presence::PresenceSubscription,
);

/// Organization subscriptions.
#[derive(Default)]
pub struct OrgSubscription;

#[GqlSubscription]
impl OrgSubscription {
    /// Live activity of an organization the caller belongs to. The stream ends, with an
    /// error as its last result, when the caller's access ends (removed from the
    /// organization, logged out, the session expired or was ended elsewhere), or when the
    /// subscriber fell too far behind (`LAGGED`: read `Organization.activity` for the rest).
    async fn activity(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ActivityEvent>>> {
        let (me, token) = subscriber(ctx)?;
        let org = OrgId::parse(&organization_id).map_err(|e| top_level(e.into()))?;
        let svc = svc(ctx).clone();
        // Subscribe and register before the check so nothing committed in between is missed.
        let feed = svc.bus.feed(org);
        let guard = svc
            .bus
            .guard(vec![Revocation::User(me), Revocation::Org(org)]);
        let check = member_check(svc.clone(), token, me, Some(org));
        let until = check().await.map_err(top_level)?;
        let stream = live::guarded(svc.clock.clone(), feed, guard, until, |_| true, check);
        Ok(stream.map(|r| r.map(ActivityEvent).map_err(ended)))
    }
}

/// The signed-in user a subscription is for, with their session token, or the top-level
/// error a subscription without one ends with.
pub(super) fn subscriber(ctx: &Context<'_>) -> async_graphql::Result<(UserId, String)> {
    match auth(ctx) {
        Auth::User { user, token } => Ok((user.id, token.clone())),
        other => {
            Err(top_level(other.user().err().unwrap_or(
                DomainError::Unauthenticated("Sign in to do this."),
            )))
        }
    }
}

/// What a member's stream checks at the start and again whenever its guard rings: the
/// session is still valid (its expiry is the stream's deadline) and, with `org`, the
/// membership is still there.
pub(super) fn member_check(
    svc: std::sync::Arc<Services>,
    token: String,
    me: UserId,
    org: Option<OrgId>,
) -> impl Fn() -> BoxFuture<'static, Verified> + Send + 'static {
    move || {
        let (svc, token) = (svc.clone(), token.clone());
        Box::pin(async move {
            let expires = identity::session_expiry(&svc, &token).await?;
            if let Some(org) = org {
                orgs::access(&svc.db.read, me, org).await?;
            }
            Ok(Some(expires))
        })
    }
}

/// The live comments and edits a shared link's holder may see (for `sharedActivity`):
/// the link's project's COMMENT_ADDED and PROJECT_UPDATED events, until the link is
/// revoked, expires or its project is deleted (and, for an ORGANIZATION link, while the
/// signed-in viewer's session and membership hold).
pub(super) async fn shared_feed(
    ctx: &Context<'_>,
    token: String,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ActivityMessage>>> {
    let svc = svc(ctx).clone();
    crate::domain::ratelimit::public_lookup(&svc, super::client(ctx)).map_err(top_level)?;
    let session = match auth(ctx) {
        Auth::User { user, token } => Some(((**user).clone(), token.clone())),
        _ => None,
    };
    let opened = sharing::resolve(&svc, &svc.db.read, &token, session.as_ref().map(|s| &s.0))
        .await
        .map_err(top_level)?;
    let (org, project, link) = (opened.organization.id, opened.project.id, opened.link.id);
    let feed = svc.bus.feed(org);
    let mut scopes = vec![
        Revocation::Link(link),
        Revocation::Project(project),
        Revocation::Org(org),
    ];
    if let Some((user, _)) = &session {
        scopes.push(Revocation::User(user.id));
    }
    let guard = svc.bus.guard(scopes);
    let check = {
        let svc = svc.clone();
        move || {
            let (svc, token, session) = (svc.clone(), token.clone(), session.clone());
            async move {
                let viewer = match &session {
                    Some((user, t)) => {
                        identity::session_expiry(&svc, t).await?;
                        Some(user)
                    }
                    None => None,
                };
                let opened = sharing::resolve(&svc, &svc.db.read, &token, viewer).await?;
                Ok(opened.link.expires_at)
            }
        }
    };
    // Checked again now that the feed and guard are in place: a revocation committed
    // between the first resolve and the registration is not missed.
    let until = check().await.map_err(top_level)?;
    let keep = move |e: &ActivityMessage| {
        e.resource_id == Some(project.0)
            && matches!(
                e.event_type,
                ActivityType::CommentAdded | ActivityType::ProjectUpdated
            )
    };
    let stream = live::guarded(svc.clock.clone(), feed, guard, until, keep, check);
    Ok(stream.map(|r| r.map_err(ended)))
}

/// The last result of a stream that ended on its own.
pub(super) fn ended(e: Ended) -> async_graphql::Error {
    match e {
        Ended::Lagged(n) => top(
            TopLevelCode::Lagged,
            format!(
                "This subscriber fell {n} events behind and was ended; subscribe again and read `Organization.activity` for what was missed."
            ),
        ),
        Ended::Denied(e) => top_level(e),
        Ended::Silent => top(
            TopLevelCode::NotFound,
            "This viewer was silent for longer than the presence timeout and left the project; subscribe again (and send updatePresence as a heartbeat).",
        ),
    }
}
