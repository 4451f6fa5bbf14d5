//! What a share-link holder reaches: types made for guests. None of them has a field that
//! leads to a User, Membership or Organization, or to an id of anything outside the shared
//! project, so no resolver below `sharedLink`, `guestComment`, `guestEdit` or
//! `sharedActivity` can hand a guest more than the link shows, whoever holds it.
use crate::domain::ids::UserId;
use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    connection::{connection, page_cost, page_request},
    error::{payload, top_level, UserError},
    loaders, svc,
    types::ActivityType,
};
use crate::domain::{projects, records, DomainError};

/// The name shown for someone whose name is gone (a deleted user).
const NOBODY: &str = "Someone";

/// The display name of a user or a guest, and nothing else of them.
async fn display_name(
    ctx: &Context<'_>,
    user: Option<UserId>,
    guest_name: Option<&str>,
) -> async_graphql::Result<String> {
    if let Some(id) = user {
        if let Some(u) = loaders::user(ctx, id).await? {
            return Ok(u.name);
        }
    }
    Ok(guest_name.unwrap_or(NOBODY).to_string())
}

/// The shared project, as its link shows it: name, content and comments.
#[derive(Clone)]
pub struct GuestProject(pub records::Project);

#[Object]
impl GuestProject {
    /// Opaque id (`prj_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Content (up to 100,000 characters).
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// Last change of name or content.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Comments, oldest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<GuestCommentConnection> {
        let req = page_request(ctx, first, after)?;
        let page = projects::comments(&svc(ctx).db.read, &self.0, req)
            .await
            .map_err(top_level)?;
        Ok(GuestCommentConnection::from_page(
            page,
            |c| c.id.0,
            GuestComment,
        ))
    }
}

/// A comment as a guest sees it: the author by display name only.
#[derive(Clone)]
pub struct GuestComment(pub records::Comment);

#[Object]
impl GuestComment {
    /// Opaque id (`cmt_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The author's display name: a user's name, or the name the guest gave.
    async fn author_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        display_name(ctx, self.0.author_user_id, self.0.guest_name.as_deref()).await
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    GuestCommentConnection,
    GuestCommentEdge,
    GuestComment,
    "comments, as a guest sees them"
);

/// A comment or an edit on the shared project, live: what happened and who did it, by
/// display name only.
#[derive(Clone)]
pub struct GuestActivity(pub Arc<records::Activity>);

#[Object]
impl GuestActivity {
    /// Opaque id (`act_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What happened.
    #[graphql(name = "type")]
    async fn kind(&self) -> ActivityType {
        self.0.event_type.into()
    }
    /// One human sentence, e.g. "Ana commented on Roadmap".
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// Who did it: a user's name, or the guest's.
    async fn actor_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        display_name(
            ctx,
            self.0.actor_user_id,
            self.0.actor_guest_name.as_deref(),
        )
        .await
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A guest's user errors. An upgrade prompt is for the organization's admins (its URL names
/// the organization, and a guest cannot act on it), so guests get the code and message only.
fn for_guests(mut errors: Vec<UserError>) -> Vec<UserError> {
    for e in &mut errors {
        e.upgrade = None;
    }
    errors
}

/// Result of `guestComment`.
#[derive(SimpleObject, Default)]
pub struct GuestCommentPayload {
    /// The new comment.
    comment: Option<GuestComment>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

impl GuestCommentPayload {
    /// Builds the payload from a domain result.
    pub fn from(r: Result<records::Comment, DomainError>) -> async_graphql::Result<Self> {
        payload(
            r,
            |c| GuestCommentPayload {
                comment: Some(GuestComment(c)),
                user_errors: vec![],
            },
            |user_errors| GuestCommentPayload {
                comment: None,
                user_errors: for_guests(user_errors),
            },
        )
    }
}

/// Result of `guestEdit`.
#[derive(SimpleObject, Default)]
pub struct GuestProjectPayload {
    /// The project after the change.
    project: Option<GuestProject>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

impl GuestProjectPayload {
    /// Builds the payload from a domain result.
    pub fn from(r: Result<records::Project, DomainError>) -> async_graphql::Result<Self> {
        payload(
            r,
            |p| GuestProjectPayload {
                project: Some(GuestProject(p)),
                user_errors: vec![],
            },
            |user_errors| GuestProjectPayload {
                project: None,
                user_errors: for_guests(user_errors),
            },
        )
    }
}
