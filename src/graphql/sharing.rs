//! Shared links and guest access.
use async_graphql::{
    ComplexObject, Context, Enum, InputObject, Object, SimpleObject, Subscription, ID,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::{
    auth, client,
    connection::connection,
    error::{payload, top_level, UserError},
    guest::{GuestActivity, GuestCommentPayload, GuestProject, GuestProjectPayload},
    loaders, svc,
    types::{ResourceType, User},
};
use crate::domain::records;
use crate::domain::{
    ids::{ProjectId, SharedLinkId},
    sharing::{self, Audience, Permission as DPermission},
    DomainError,
};

/// What a link lets its holder do.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DPermission")]
pub enum Permission {
    /// Read.
    View,
    /// Read and comment.
    Comment,
    /// Read, comment and edit.
    Edit,
}

/// Who may open a link.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "Audience")]
pub enum LinkAudience {
    /// Anyone holding it.
    Anyone,
    /// Only signed-in members of the organization.
    Organization,
}

/// A shared link to a resource. Listed only to its creator and the organization's admins.
#[derive(Clone)]
pub struct SharedLink(records::SharedLink);

impl SharedLink {
    /// A link the caller may manage.
    pub fn new(model: records::SharedLink) -> Self {
        SharedLink(model)
    }
}

#[Object]
impl SharedLink {
    /// Opaque id (`lnk_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `PUBLIC_URL/s/{token}`; the token is derived, so it can be shown again.
    async fn url(&self, ctx: &Context<'_>) -> String {
        sharing::url(svc(ctx), &self.0)
    }
    /// What is shared.
    async fn resource_type(&self) -> ResourceType {
        ResourceType::Project
    }
    /// Id of what is shared.
    async fn resource_id(&self) -> ID {
        ID(ProjectId(self.0.resource_id).to_string())
    }
    /// What holders may do.
    async fn permission(&self) -> Permission {
        self.0.permission.into()
    }
    /// Who may open it.
    async fn audience(&self) -> LinkAudience {
        self.0.audience.into()
    }
    /// Who created it.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        loaders::user(ctx, self.0.created_by_user_id)
            .await?
            .map(User::co_member)
            .ok_or_else(|| top_level(DomainError::NotFound("User")))
    }
    /// Every open, guests and users.
    async fn access_count(&self) -> i32 {
        self.0.access_count.min(i32::MAX as i64) as i32
    }
    /// Distinct visitor ids among the opens.
    async fn unique_visitors(&self) -> i32 {
        self.0.unique_visitors.min(i32::MAX as i64) as i32
    }
    /// First open.
    async fn first_accessed_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_accessed_at
    }
    /// Last open.
    async fn last_accessed_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_accessed_at
    }
    /// When it stops working, if ever.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// When it was revoked.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Product surface it was created from.
    async fn surface(&self) -> Option<&str> {
        self.0.surface.as_deref()
    }
}

connection!(
    SharedLinkConnection,
    SharedLinkEdge,
    SharedLink,
    "shared links"
);

/// PUBLIC: what the holder of a link sees. Opening it counts a visit.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SharedView {
    /// What the link allows.
    permission: Permission,
    /// What the link shows: name, content, comments; nothing of the organization.
    project: GuestProject,
    /// The organization's name.
    organization_name: String,
    /// Display name of the link's creator.
    shared_by: String,
    #[graphql(skip)]
    token: String,
}

#[ComplexObject]
impl SharedView {
    /// Whether the holder may comment.
    async fn can_comment(&self) -> bool {
        self.permission != Permission::View
    }
    /// Whether the holder may edit.
    async fn can_edit(&self) -> bool {
        self.permission == Permission::Edit
    }
    /// Sign-up page carrying the share token for attribution.
    async fn sign_up_url(&self, ctx: &Context<'_>) -> String {
        svc(ctx).config.signup_link(&[("share", &self.token)])
    }
}

/// Input of `createSharedLink`.
#[derive(InputObject)]
pub struct CreateSharedLinkInput {
    /// What is shared.
    resource_type: ResourceType,
    /// Id of what is shared.
    resource_id: ID,
    /// What holders may do.
    permission: Permission,
    /// Who may open it.
    #[graphql(default_with = "Some(LinkAudience::Anyone)")]
    audience: Option<LinkAudience>,
    /// When it stops working.
    expires_at: Option<DateTime<Utc>>,
    /// Product surface label.
    surface: Option<String>,
}

/// Input of `guestComment`.
#[derive(InputObject)]
pub struct GuestCommentInput {
    /// The link's token.
    token: String,
    /// 1..10,000 characters.
    body: String,
    /// Shown as the author.
    guest_name: String,
    /// The guest's visitor id; signing up later with it makes the comment theirs.
    visitor_id: Option<String>,
}

/// Input of `guestEdit`: omitted fields stay as they are.
#[derive(InputObject)]
pub struct GuestEditInput {
    /// The link's token.
    token: String,
    /// New name.
    name: Option<String>,
    /// New content.
    content: Option<String>,
    /// The guest's visitor id.
    visitor_id: Option<String>,
}

/// Result of a shared link mutation.
#[derive(SimpleObject, Default)]
pub struct SharedLinkPayload {
    /// The link after the change.
    shared_link: Option<SharedLink>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

fn link_payload(
    r: Result<records::SharedLink, DomainError>,
) -> async_graphql::Result<SharedLinkPayload> {
    payload(
        r,
        |l| SharedLinkPayload {
            shared_link: Some(SharedLink(l)),
            user_errors: vec![],
        },
        |user_errors| SharedLinkPayload {
            shared_link: None,
            user_errors,
        },
    )
}

fn viewer<'a>(ctx: &Context<'a>) -> Option<&'a records::User> {
    auth(ctx).user().ok()
}

/// Sharing queries.
#[derive(Default)]
pub struct SharingQuery;

#[Object]
impl SharingQuery {
    /// PUBLIC. What the holder of a link sees; counts a visit. `visitorId` identifies a
    /// returning guest (signed-in users count as themselves).
    async fn shared_link(
        &self,
        ctx: &Context<'_>,
        token: String,
        visitor_id: Option<String>,
    ) -> async_graphql::Result<Option<SharedView>> {
        let opened = sharing::open(
            svc(ctx),
            client(ctx),
            &token,
            viewer(ctx),
            visitor_id.as_deref(),
        )
        .await
        .map_err(top_level)?;
        Ok(Some(SharedView {
            permission: opened.permission().into(),
            project: GuestProject(opened.project),
            organization_name: opened.organization.name,
            shared_by: opened.creator.name,
            token,
        }))
    }
}

/// Sharing mutations.
#[derive(Default)]
pub struct SharingMutation;

#[Object]
impl SharingMutation {
    /// Shares a project. EDIT links are a plan feature ("edit_links").
    async fn create_shared_link(
        &self,
        ctx: &Context<'_>,
        input: CreateSharedLinkInput,
    ) -> async_graphql::Result<SharedLinkPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let project = ProjectId::parse(&input.resource_id)?;
            sharing::create(
                svc(ctx),
                user,
                sharing::NewLink {
                    project,
                    permission: input.permission.into(),
                    audience: input.audience.unwrap_or(LinkAudience::Anyone).into(),
                    expires_at: input.expires_at,
                    surface: input.surface,
                },
            )
            .await
        }
        .await;
        link_payload(r)
    }

    /// Revokes a link: its token stops working at once (its creator or an admin).
    async fn revoke_shared_link(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<SharedLinkPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async { sharing::revoke(svc(ctx), user, SharedLinkId::parse(&id)?).await }.await;
        link_payload(r)
    }

    /// PUBLIC. Comments through a COMMENT or EDIT link.
    async fn guest_comment(
        &self,
        ctx: &Context<'_>,
        input: GuestCommentInput,
    ) -> async_graphql::Result<GuestCommentPayload> {
        let r = sharing::guest_comment(
            svc(ctx),
            client(ctx),
            &input.token,
            &input.body,
            &input.guest_name,
            input.visitor_id.as_deref(),
            viewer(ctx),
        )
        .await;
        GuestCommentPayload::from(r)
    }

    /// PUBLIC. Edits through an EDIT link.
    async fn guest_edit(
        &self,
        ctx: &Context<'_>,
        input: GuestEditInput,
    ) -> async_graphql::Result<GuestProjectPayload> {
        let r = sharing::guest_edit(
            svc(ctx),
            client(ctx),
            &input.token,
            input.name.as_deref(),
            input.content.as_deref(),
            viewer(ctx),
        )
        .await
        .map(|(p, _)| p);
        GuestProjectPayload::from(r)
    }
}

/// Sharing subscriptions.
#[derive(Default)]
pub struct SharingSubscription;

#[Subscription]
impl SharingSubscription {
    /// PUBLIC with a valid link token: live comments and edits on the shared resource. The
    /// stream ends, with an error as its last result, when the link is revoked or expires
    /// or its project is deleted.
    async fn shared_activity(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<GuestActivity>>> {
        let feed = super::subscription::shared_feed(ctx, token).await?;
        Ok(feed.map(|r| r.map(GuestActivity)))
    }
}
