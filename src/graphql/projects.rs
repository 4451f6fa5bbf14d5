//! Projects and comments, for members of their organization.
use std::borrow::Cow;

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    activity::Actor,
    auth,
    connection::{connection, page_cost, page_request},
    error::{payload, top_level, UserError},
    orgs::Organization,
    sharing::SharedLink,
    svc,
};
use crate::domain::records;
use crate::domain::{
    ids::{OrgId, ProjectId, UserId},
    projects, sharing, DomainError,
};

/// A project: the artifact people create and share, as a member of its organization sees
/// it (link holders get a `GuestProject` instead, see `guest`).
#[derive(Clone)]
pub struct Project {
    model: records::Project,
    org: Organization,
    /// Whether `model.content` was read (see [`projects::Content`]).
    content: projects::Content,
}

impl Project {
    /// A project seen by a member.
    pub fn member(model: records::Project, org: Organization) -> Self {
        Self::listed(model, org, projects::Content::Read)
    }

    /// A project of a list, read with or without its content.
    pub fn listed(model: records::Project, org: Organization, content: projects::Content) -> Self {
        Project {
            model,
            org,
            content,
        }
    }
}

#[Object]
impl Project {
    /// Opaque id (`prj_…`).
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.model.name
    }
    /// Content (up to 100,000 characters).
    async fn content(&self, ctx: &Context<'_>) -> async_graphql::Result<Cow<'_, str>> {
        match self.content {
            projects::Content::Read => Ok(Cow::Borrowed(&self.model.content)),
            // Listed without it, yet asked for (a selection the look-ahead did not see).
            projects::Content::Skip => {
                projects::content(&svc(ctx).db.read, self.org.org_id(), self.model.id)
                    .await
                    .map(Cow::Owned)
                    .map_err(top_level)
            }
        }
    }
    /// The organization.
    async fn organization(&self) -> &Organization {
        &self.org
    }
    /// Who created it.
    async fn created_by(&self) -> Actor {
        Actor::new(
            self.model.created_by_user_id,
            self.model.created_by_guest_name.clone(),
        )
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    /// Last change of name or content.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
    /// Comments, oldest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<CommentConnection> {
        let req = page_request(ctx, first, after)?;
        let page = projects::comments(&svc(ctx).db.read, &self.model, req)
            .await
            .map_err(top_level)?;
        Ok(CommentConnection::from_page(page, |c| c.id.0, Comment))
    }
    /// Its shared links: all for admins, a member's own for members.
    async fn shared_links(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SharedLink>> {
        let org = &self.org;
        let viewer = auth(ctx).user().map_err(top_level)?;
        let links = sharing::of_project(&svc(ctx).db.read, org.view(), viewer.id, self.model.id)
            .await
            .map_err(top_level)?;
        Ok(links.into_iter().map(SharedLink::new).collect())
    }
}

/// A comment on a project.
#[derive(Clone)]
pub struct Comment(pub records::Comment);

#[Object]
impl Comment {
    /// Opaque id (`cmt_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// Who wrote it: a user, or a guest (who becomes the user if they sign up later).
    async fn author(&self) -> Actor {
        Actor::new(self.0.author_user_id, self.0.guest_name.clone())
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(ProjectConnection, ProjectEdge, Project, "projects");
connection!(CommentConnection, CommentEdge, Comment, "comments");

/// Input of `createProject`.
#[derive(InputObject)]
pub struct CreateProjectInput {
    /// The organization.
    organization_id: ID,
    /// 1..200 characters.
    name: String,
    /// Up to 100,000 characters.
    #[graphql(default_with = "Some(String::new())")]
    content: Option<String>,
}

/// Input of `updateProject`: omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateProjectInput {
    /// The project.
    id: ID,
    /// New name.
    name: Option<String>,
    /// New content.
    content: Option<String>,
}

/// Result of a project mutation.
#[derive(SimpleObject, Default)]
pub struct ProjectPayload {
    /// The project after the change.
    pub project: Option<Project>,
    /// What went wrong, if anything.
    pub user_errors: Vec<UserError>,
}

impl ProjectPayload {
    /// Builds the payload from a domain result.
    pub fn from(r: Result<Project, DomainError>) -> async_graphql::Result<Self> {
        payload(
            r,
            |p| ProjectPayload {
                project: Some(p),
                user_errors: vec![],
            },
            |user_errors| ProjectPayload {
                project: None,
                user_errors,
            },
        )
    }
}

/// Result of a comment mutation.
#[derive(SimpleObject, Default)]
pub struct CommentPayload {
    /// The new comment.
    pub comment: Option<Comment>,
    /// What went wrong, if anything.
    pub user_errors: Vec<UserError>,
}

impl CommentPayload {
    /// Builds the payload from a domain result.
    pub fn from(r: Result<records::Comment, DomainError>) -> async_graphql::Result<Self> {
        payload(
            r,
            |c| CommentPayload {
                comment: Some(Comment(c)),
                user_errors: vec![],
            },
            |user_errors| CommentPayload {
                comment: None,
                user_errors,
            },
        )
    }
}

/// Result of `mergeOrganization`.
#[derive(SimpleObject, Default)]
pub struct MergeOrganizationPayload {
    /// The organization the projects moved into.
    organization: Option<Organization>,
    /// How many projects moved.
    moved_projects: i32,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

async fn member_project(
    ctx: &Context<'_>,
    viewer: UserId,
    p: records::Project,
) -> Result<Project, DomainError> {
    let access = crate::domain::orgs::access(&svc(ctx).db.read, viewer, p.organization_id).await?;
    Ok(Project::member(p, access.into()))
}

/// Project queries.
#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// A project of an organization the caller belongs to (FORBIDDEN otherwise).
    async fn project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Project>> {
        let user = auth(ctx).user().map_err(top_level)?;
        let id = ProjectId::parse(&id).map_err(|e| top_level(e.into()))?;
        let (p, access) = projects::get(&svc(ctx).db.read, user.id, id)
            .await
            .map_err(top_level)?;
        Ok(Some(Project::member(p, access.into())))
    }
}

/// Project mutations.
#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// Creates a project. The creator's first project activates them.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> async_graphql::Result<ProjectPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let org = OrgId::parse(&input.organization_id)?;
            let p = projects::create(
                svc(ctx),
                user,
                org,
                &input.name,
                input.content.as_deref().unwrap_or(""),
            )
            .await?;
            member_project(ctx, user.id, p).await
        }
        .await;
        ProjectPayload::from(r)
    }

    /// Changes a project's name and/or content (any member).
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectInput,
    ) -> async_graphql::Result<ProjectPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let id = ProjectId::parse(&input.id)?;
            let p = projects::update(
                svc(ctx),
                user,
                id,
                input.name.as_deref(),
                input.content.as_deref(),
            )
            .await?;
            member_project(ctx, user.id, p).await
        }
        .await;
        ProjectPayload::from(r)
    }

    /// Deletes a project with its comments and links (its creator, or an ADMIN/OWNER).
    async fn delete_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<super::orgs::DeletePayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async { projects::delete(svc(ctx), user, ProjectId::parse(&id)?).await }.await;
        super::orgs::DeletePayload::from(r.map(|id| id.to_string()))
    }

    /// Comments on a project (members). The author's first comment activates them.
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        body: String,
    ) -> async_graphql::Result<CommentPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            projects::add_comment(svc(ctx), user, ProjectId::parse(&project_id)?, &body).await
        }
        .await;
        CommentPayload::from(r)
    }

    /// Someone who signed up alone and was later invited elsewhere keeps both memberships. If
    /// they want one, this moves every project of a workspace whose only member is the caller
    /// (an OWNER there) into another org where the caller is a member, keeps its shared links
    /// working, then deletes the source.
    async fn merge_organization(
        &self,
        ctx: &Context<'_>,
        source_id: ID,
        target_id: ID,
    ) -> async_graphql::Result<MergeOrganizationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let source = OrgId::parse(&source_id)?;
            let target = OrgId::parse(&target_id)?;
            projects::merge_organization(svc(ctx), user, source, target).await
        }
        .await;
        payload(
            r,
            |(access, moved)| MergeOrganizationPayload {
                organization: Some(access.into()),
                moved_projects: moved as i32,
                user_errors: vec![],
            },
            |user_errors| MergeOrganizationPayload {
                user_errors,
                ..Default::default()
            },
        )
    }
}
