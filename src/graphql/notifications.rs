//! Notifications: the signed-in user's own list, unread count, marking read, preferences,
//! and a live stream of new ones (guarded like `activity`: it ends when the caller's session
//! ends and, when scoped to an organization, when their membership there ends).
use async_graphql::{
    ComplexObject, Context, Enum, InputObject, Object, SimpleObject, Subscription, ID,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::{
    auth,
    connection::{connection, page_request},
    error::{payload, top_level, UserError},
    svc,
};
use crate::domain::{
    ids::{CommentId, NotificationId, OrgId, ProjectId, UserId},
    notifications::{self, Kind, Preferences, PreferencesChange},
    records,
};
use crate::pubsub::{live, Revocation};

/// What a notification is about.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "Kind")]
pub enum NotificationKind {
    /// Someone commented on a project you created or commented on (guests included).
    Comment,
    /// Someone mentioned you (`@[usr_…]`) in a comment.
    Mention,
    /// Someone accepted your invitation.
    InvitationAccepted,
    /// Someone signed up through your shared link or referral code.
    Signup,
    /// Your organization reached a plan limit (ADMINs and OWNERs).
    LimitReached,
}

/// Something that happened to the signed-in user.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Notification {
    /// Opaque id (`ntf_…`), time-ordered.
    id: ID,
    /// What it is about.
    kind: NotificationKind,
    /// One human sentence, e.g. "Ana commented on Roadmap".
    summary: String,
    /// Display name of whoever caused it (a guest's chosen name; "kfactor" for limits).
    actor_name: String,
    /// The organization it happened in; null when it concerns you alone (a referral signup).
    organization_id: Option<ID>,
    /// The project it is about, if any.
    project_id: Option<ID>,
    /// The comment it is about, if any.
    comment_id: Option<ID>,
    /// When it happened.
    created_at: DateTime<Utc>,
    /// When you marked it read; null while unread.
    read_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl Notification {
    /// Whether it has been read.
    async fn read(&self) -> bool {
        self.read_at.is_some()
    }
}

impl From<records::Notification> for Notification {
    fn from(n: records::Notification) -> Self {
        Notification {
            id: ID(n.id.to_string()),
            kind: n.kind.into(),
            summary: n.summary,
            actor_name: n.actor_name,
            organization_id: n.organization_id.map(|o| ID(o.to_string())),
            project_id: n.project_id.map(|p| ID(ProjectId::from(p.0).to_string())),
            comment_id: n.comment_id.map(|c| ID(CommentId::from(c.0).to_string())),
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

connection!(
    NotificationConnection,
    NotificationEdge,
    Notification,
    "notifications"
);

/// Which notifications you get, and whether they are emailed.
#[derive(SimpleObject)]
pub struct NotificationPreferences {
    /// Comments on projects you created or commented on.
    comments: bool,
    /// Mentions in comments.
    mentions: bool,
    /// Your invitations accepted.
    invitation_accepted: bool,
    /// Signups through your shared links or referral code.
    signups: bool,
    /// Your organization reached a plan limit (ADMINs and OWNERs).
    limit_reached: bool,
    /// A batched email (at most one per interval) of what is still unread.
    email: bool,
}

impl From<Preferences> for NotificationPreferences {
    fn from(p: Preferences) -> Self {
        NotificationPreferences {
            comments: p.comments,
            mentions: p.mentions,
            invitation_accepted: p.invitation_accepted,
            signups: p.signups,
            limit_reached: p.limit_reached,
            email: p.email,
        }
    }
}

/// Input of `updateNotificationPreferences`; an omitted setting stays as it is.
#[derive(InputObject)]
pub struct NotificationPreferencesInput {
    /// Comments on projects you created or commented on.
    comments: Option<bool>,
    /// Mentions in comments.
    mentions: Option<bool>,
    /// Your invitations accepted.
    invitation_accepted: Option<bool>,
    /// Signups through your shared links or referral code.
    signups: Option<bool>,
    /// Your organization reached a plan limit.
    limit_reached: Option<bool>,
    /// The batched notification email.
    email: Option<bool>,
}

/// Result of `updateNotificationPreferences`.
#[derive(SimpleObject, Default)]
pub struct NotificationPreferencesPayload {
    /// The preferences now in force.
    preferences: Option<NotificationPreferences>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

/// Result of `markNotificationsRead`.
#[derive(SimpleObject, Default)]
pub struct MarkNotificationsReadPayload {
    /// How many notifications turned read.
    marked: i32,
    /// Your unread notifications left.
    unread_count: i32,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

fn me<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a records::User> {
    auth(ctx).user().map_err(top_level)
}

/// `User.notifications` (the caller's own; callers checked it is them).
pub async fn list(
    ctx: &Context<'_>,
    user: UserId,
    first: Option<i32>,
    after: Option<String>,
    unread_only: bool,
) -> async_graphql::Result<NotificationConnection> {
    let req = page_request(ctx, first, after)?;
    let page = notifications::list(&svc(ctx).db.read, user, unread_only, req)
        .await
        .map_err(top_level)?;
    Ok(NotificationConnection::from_page(
        page,
        |n| n.id.0,
        Notification::from,
    ))
}

/// `User.unreadNotificationCount`.
pub async fn unread(ctx: &Context<'_>, user: UserId) -> async_graphql::Result<i32> {
    let n = notifications::unread_count(&svc(ctx).db.read, user)
        .await
        .map_err(top_level)?;
    Ok(n.min(i32::MAX as u64) as i32)
}

/// `User.notificationPreferences`.
pub async fn preferences(
    ctx: &Context<'_>,
    user: UserId,
) -> async_graphql::Result<NotificationPreferences> {
    Ok(notifications::preferences(&svc(ctx).db.read, user)
        .await
        .map_err(top_level)?
        .into())
}

/// Notification mutations.
#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks your notifications read: those named in `ids` (at most 100), and with `upTo`
    /// every one up to and including that id (e.g. the newest you have shown). Ids of
    /// notifications that are not yours change nothing.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
        up_to: Option<ID>,
    ) -> async_graphql::Result<MarkNotificationsReadPayload> {
        let user = me(ctx)?.id;
        let ids: Vec<String> = ids.unwrap_or_default().into_iter().map(|i| i.0).collect();
        let svc = svc(ctx);
        let r = notifications::mark_read(svc, user, &ids, up_to.as_ref().map(|u| u.as_str())).await;
        let unread = notifications::unread_count(&svc.db.read, user)
            .await
            .map_err(top_level)?;
        let unread_count = unread.min(i32::MAX as u64) as i32;
        payload(
            r,
            |n| MarkNotificationsReadPayload {
                marked: n.min(i32::MAX as u64) as i32,
                unread_count,
                user_errors: vec![],
            },
            |e| MarkNotificationsReadPayload {
                unread_count,
                user_errors: e,
                ..Default::default()
            },
        )
    }

    /// Turns kinds of notifications, and the batched notification email, on or off.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: NotificationPreferencesInput,
    ) -> async_graphql::Result<NotificationPreferencesPayload> {
        let user = me(ctx)?.id;
        let r = notifications::update_preferences(
            svc(ctx),
            user,
            PreferencesChange {
                comments: input.comments,
                mentions: input.mentions,
                invitation_accepted: input.invitation_accepted,
                signups: input.signups,
                limit_reached: input.limit_reached,
                email: input.email,
            },
        )
        .await;
        payload(
            r,
            |p| NotificationPreferencesPayload {
                preferences: Some(p.into()),
                user_errors: vec![],
            },
            |e| NotificationPreferencesPayload {
                user_errors: e,
                ..Default::default()
            },
        )
    }
}

/// Notification subscriptions.
#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// Your new notifications, live. With `organizationId`, only that organization's, and
    /// the stream ends when your membership there ends. It ends, with an error as its last
    /// result, when your session ends (logged out, expired, ended elsewhere).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Notification>>> {
        let (me, token) = super::subscription::subscriber(ctx)?;
        let org = organization_id
            .map(|o| OrgId::parse(&o))
            .transpose()
            .map_err(|e| top_level(e.into()))?;
        let svc = svc(ctx).clone();
        // Ring and guard first, then the check and the starting point: nothing committed in
        // between is missed.
        let bell = svc.bus.bell();
        let mut scopes = vec![Revocation::User(me)];
        scopes.extend(org.map(Revocation::Org));
        let guard = svc.bus.guard(scopes);
        let check = super::subscription::member_check(svc.clone(), token, me, org);
        let until = check().await.map_err(top_level)?;
        let last = notifications::latest(&svc.db.read, me)
            .await
            .map_err(top_level)?;
        let load = {
            let svc = svc.clone();
            move |after: Option<NotificationId>| {
                let svc = svc.clone();
                async move { notifications::after(&svc.db.read, me, org, after).await }
            }
        };
        let stream = live::rung(
            svc.clock.clone(),
            bell,
            me,
            guard,
            until,
            last,
            load,
            |n: &records::Notification| n.id,
            check,
        );
        Ok(stream.map(|r| {
            r.map(Notification::from)
                .map_err(super::subscription::ended)
        }))
    }
}
