//! Presence and cursors: who is viewing a project right now, live. Thin: the rules are in
//! `domain::presence`, the rooms on the bus, the stream in `pubsub::live::presence`.
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, Subscription, ID};
use chrono::{DateTime, TimeZone, Utc};
use futures_util::{Stream, StreamExt};

use super::{
    auth, client,
    error::{payload, top_level, UserError},
    subscription::ended,
    svc, Auth,
};
use crate::{
    domain::presence::{self, room, Door, Session},
    pubsub::live,
};

/// Whether a viewer is a member of the project's organization or a shared link's holder.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "room::ViewerKind")]
pub enum ViewerKind {
    /// A member of the project's organization.
    Member,
    /// Someone viewing through a shared link.
    Guest,
}

/// A point on the viewed page, in the client's own coordinates.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct Cursor {
    /// Horizontal.
    pub x: f64,
    /// Vertical.
    pub y: f64,
}

/// Where a viewer's pointer is.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct CursorInput {
    /// Horizontal: a finite number, at most 1e9 in absolute value.
    pub x: f64,
    /// Vertical: a finite number, at most 1e9 in absolute value.
    pub y: f64,
}

/// Someone viewing the project: an opaque id, a display name and what they point at; never
/// a user id, an email or an organization.
pub struct PresenceViewer(room::Viewer);

#[Object]
impl PresenceViewer {
    /// Opaque id of this viewer (a new one per subscription); `left` lists these.
    async fn id(&self) -> &str {
        &self.0.id
    }
    /// Display name: a member's name, or the name a guest chose ("Guest" if none).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Member or guest.
    async fn kind(&self) -> ViewerKind {
        self.0.kind.into()
    }
    /// Where their pointer is, if they sent one (a selection clears it).
    async fn cursor(&self) -> Option<Cursor> {
        self.0.cursor.map(|p| Cursor { x: p.x, y: p.y })
    }
    /// What they selected, if anything (a cursor clears it).
    async fn selection(&self) -> Option<&str> {
        self.0.selection.as_deref()
    }
    /// Their client-defined state, e.g. "typing".
    async fn state(&self) -> Option<&str> {
        self.0.state.as_deref()
    }
    /// When they last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0.updated_at)
            .single()
            .unwrap_or_default()
    }
}

/// One frame of a presence subscription: what changed since the previous frame.
pub struct PresenceFrame {
    frame: room::Frame,
    me: String,
    key: String,
}

#[Object]
impl PresenceFrame {
    /// Your own viewer's id (find yourself in `viewers`).
    async fn viewer_id(&self) -> &str {
        &self.me
    }
    /// Your viewer key: pass it to `updatePresence`. Secret: only your own frames carry it.
    async fn viewer_key(&self) -> &str {
        &self.key
    }
    /// True when `viewers` lists everyone present (the first frame, or after falling
    /// behind): replace what you show. Otherwise `viewers` lists only who joined or changed.
    async fn full(&self) -> bool {
        self.frame.full
    }
    /// Viewers that joined or changed since the previous frame, each with its latest value
    /// (everyone present when `full`).
    async fn viewers(&self) -> Vec<PresenceViewer> {
        self.frame
            .viewers
            .iter()
            .cloned()
            .map(PresenceViewer)
            .collect()
    }
    /// Ids of viewers that left (closed the page, or were silent for too long).
    async fn left(&self) -> &[String] {
        &self.frame.left
    }
    /// How many are viewing now, you included.
    async fn viewer_count(&self) -> usize {
        self.frame.count
    }
}

fn session(ctx: &Context<'_>) -> Option<Session> {
    match auth(ctx) {
        Auth::User { user, token } => Some(((**user).clone(), token.clone())),
        _ => None,
    }
}

/// Presence subscriptions.
#[derive(Default)]
pub struct PresenceSubscription;

#[Subscription]
impl PresenceSubscription {
    /// Who is viewing a project right now, live. Members of the project's organization pass
    /// `projectId` (signed in); holders of a shared link pass its `token` and may pass the
    /// `name` to be shown as (at most 60 characters; "Guest" if none). Exactly one of
    /// `projectId` and `token`. The first frame lists everyone and carries your
    /// `viewerKey`; later frames (at most one per 50 ms) carry what changed. You stay
    /// present while the subscription runs and you call `updatePresence` at least once per
    /// `KFACTOR_PRESENCE_TIMEOUT_MS` (a heartbeat may carry no fields); the stream ends with
    /// an error when you were silent too long (NOT_FOUND), when your access ends (link
    /// revoked or expired, removed from the organization, signed out), or when the project
    /// has `KFACTOR_PRESENCE_MAX_VIEWERS` viewers already (LIMIT_REACHED).
    async fn presence(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        token: Option<String>,
        name: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<PresenceFrame>>> {
        let svc = svc(ctx).clone();
        let door = Door::parse(project_id.as_deref().map(String::as_str), token.as_deref())
            .map_err(top_level)?;
        let session = session(ctx);
        let admission =
            presence::admit(&svc, client(ctx), &door, session.as_ref(), name.as_deref())
                .await
                .map_err(top_level)?;
        // Registered before the second check, so a change committed in between is not missed.
        let guard = svc.bus.guard(admission.scopes.clone());
        let check = {
            let svc = svc.clone();
            move || {
                let (svc, door, session) = (svc.clone(), door.clone(), session.clone());
                async move { presence::recheck(&svc, &door, session.as_ref()).await }
            }
        };
        let until = check().await.map_err(top_level)?;
        let seat = presence::join(&svc, &admission).map_err(top_level)?;
        let (me, key) = (admission.viewer.id.clone(), admission.key.clone());
        let stream = live::presence(svc.clock.clone(), seat, guard, until, check);
        Ok(stream.map(move |r| {
            r.map(|frame| PresenceFrame {
                frame,
                me: me.clone(),
                key: key.clone(),
            })
            .map_err(ended)
        }))
    }
}

/// What `updatePresence` did.
#[derive(SimpleObject)]
pub struct UpdatePresencePayload {
    /// The update was taken.
    pub ok: bool,
    /// Why not.
    pub user_errors: Vec<UserError>,
}

/// Presence mutations.
#[derive(Default)]
pub struct PresenceMutation;

#[Object]
impl PresenceMutation {
    /// PUBLIC with a viewer key. Moves your own presence entry: a `cursor` or a `selection`
    /// (each clears the other; an empty selection clears it), and a `state` (empty clears
    /// it). Pass the same `projectId` or `token` as your subscription, and its `viewerKey`.
    /// Without fields it is a heartbeat. Limited per viewer
    /// (`KFACTOR_LIMIT_PRESENCE_UPDATES_PER_VIEWER`, RATE_LIMITED beyond).
    #[allow(clippy::too_many_arguments)]
    async fn update_presence(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        token: Option<String>,
        viewer_key: String,
        cursor: Option<CursorInput>,
        selection: Option<String>,
        state: Option<String>,
    ) -> async_graphql::Result<UpdatePresencePayload> {
        let r = Door::parse(project_id.as_deref().map(String::as_str), token.as_deref()).and_then(
            |door| {
                presence::update(
                    svc(ctx),
                    &door,
                    &viewer_key,
                    presence::Update {
                        cursor: cursor.map(|c| (c.x, c.y)),
                        selection,
                        state,
                    },
                )
            },
        );
        payload(
            r,
            |()| UpdatePresencePayload {
                ok: true,
                user_errors: Vec::new(),
            },
            |user_errors| UpdatePresencePayload {
                ok: false,
                user_errors,
            },
        )
    }
}
