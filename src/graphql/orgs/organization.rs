//! The Organization object and its memberships: what a member (or the platform side) sees of
//! a workspace.
use std::sync::Arc;

use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};

use crate::domain::records;
use crate::domain::{
    self,
    access::OrgView,
    ids::OrgId,
    orgs::{self, Role as DRole},
};
use crate::graphql::{
    activity::{ActivityEvent, ActivityEventConnection},
    auth,
    connection::{connection, page_cost, page_request},
    error::{top, top_level, TopLevelCode},
    loaders,
    plans::{BillingPeriod, Entitlement, Plan},
    svc,
    types::{InvitePolicy, Role, User},
};

/// A workspace: members, their projects, links, plan and activity.
#[derive(Clone)]
pub struct Organization {
    /// The organization and the caller's role: constructing an `Organization` is proof the
    /// caller may see it. A role of None: seen from the platform side (staff who are not
    /// members, API keys), which shows the organization but not what is inside it.
    view: OrgView,
}

impl Organization {
    /// An organization the caller holds `role` in.
    pub fn new(model: records::Organization, role: DRole) -> Self {
        Organization {
            view: OrgView::member(model, role),
        }
    }

    pub(crate) fn org_id(&self) -> OrgId {
        self.view.id()
    }

    /// The organization row.
    pub fn model(&self) -> &records::Organization {
        &self.view.org
    }

    /// The caller's view of it (the row and their role; None from the platform side).
    pub fn view(&self) -> &OrgView {
        &self.view
    }

    /// Members only (the domain's rule): the caller's role, FORBIDDEN from the platform side.
    fn member(&self) -> async_graphql::Result<DRole> {
        self.view.inside().map_err(top_level)
    }
}

impl From<orgs::OrgAccess> for Organization {
    fn from(a: orgs::OrgAccess) -> Self {
        Organization::new(a.org, a.role)
    }
}

impl From<OrgView> for Organization {
    fn from(view: OrgView) -> Self {
        Organization { view }
    }
}

#[Object]
impl Organization {
    /// Opaque id (`org_…`).
    async fn id(&self) -> ID {
        ID(self.org_id().to_string())
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.view.org.name
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.view.org.created_at
    }

    /// Set after `deleteOrganization`: when it will be removed (unless an owner restores
    /// it first).
    async fn deletion_scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.view.org.deletion_scheduled_for
    }

    /// Who may invite people.
    async fn invite_policy(&self) -> InvitePolicy {
        self.view.org.invite_policy.into()
    }

    /// The caller's role here (null for API keys and for staff who are not members).
    async fn viewer_role(&self) -> Option<Role> {
        self.view.role.map(Into::into)
    }

    /// The organization's plan.
    async fn plan(&self, ctx: &Context<'_>) -> Plan {
        let catalog = &svc(ctx).plans;
        let p = catalog
            .plan(&self.view.org.plan_key)
            .unwrap_or_else(|| catalog.default_plan());
        Plan(p.clone())
    }

    /// The current period of periodic limits (monthly from the billing anchor).
    async fn billing_period(&self, ctx: &Context<'_>) -> BillingPeriod {
        let (start, end) =
            domain::entitlements::period(self.view.org.billing_anchor, svc(ctx).now());
        BillingPeriod { start, end }
    }

    /// Plan, period and the billing provider's subscription (ADMIN and OWNER, staff, API
    /// keys).
    async fn billing(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<crate::graphql::billing::Billing> {
        crate::graphql::billing::of(ctx, &self.view).await
    }

    /// Every feature of the catalog, for this organization.
    async fn entitlements(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Entitlement>> {
        let svc = svc(ctx);
        Ok(domain::entitlements::all(&svc.db.read, svc, &self.view.org)
            .await
            .map_err(top_level)?
            .into_iter()
            .map(Entitlement)
            .collect())
    }

    /// One feature, e.g. "projects" (null if the catalog has no such feature).
    async fn entitlement(
        &self,
        ctx: &Context<'_>,
        feature: String,
    ) -> async_graphql::Result<Option<Entitlement>> {
        let svc = svc(ctx);
        Ok(
            domain::entitlements::check(&svc.db.read, svc, &self.view.org, &feature)
                .await
                .map_err(top_level)?
                .map(Entitlement),
        )
    }

    /// Members, in the order they joined.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<MembershipConnection> {
        self.member()?;
        let req = page_request(ctx, first, after)?;
        let db = &svc(ctx).db.read;
        // The members' users in the same statement when the selection reads them.
        let nodes = ctx.look_ahead();
        let users = nodes.field("nodes").field("user").exists()
            || nodes.field("edges").field("node").field("user").exists();
        let page = match users {
            true => orgs::members_with_users(db, self.org_id(), req)
                .await
                .map_err(top_level)?
                .map(|(m, u)| (m, Some(u))),
            false => orgs::members(db, self.org_id(), req)
                .await
                .map_err(top_level)?
                .map(|m| (m, None)),
        };
        let org = self.clone();
        Ok(MembershipConnection::from_page(
            page,
            |(m, _)| m.id,
            |(m, user)| Membership {
                model: m,
                org: Some(org.clone()),
                user,
            },
        ))
    }

    /// Invitations, newest first, optionally only those with `status`.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        status: Option<crate::graphql::invitations::InvitationStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::invitations::InvitationConnection> {
        self.member()?;
        let req = page_request(ctx, first, after)?;
        let page = domain::invitations::list(svc(ctx), self.org_id(), status.map(Into::into), req)
            .await
            .map_err(top_level)?;
        let org = self.clone();
        Ok(
            crate::graphql::invitations::InvitationConnection::from_page(
                page,
                |i| i.id,
                |i| crate::graphql::invitations::Invitation::new(i, org.clone()),
            ),
        )
    }

    /// Projects, newest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::projects::ProjectConnection> {
        self.member()?;
        let req = page_request(ctx, first, after)?;
        // Content (up to 100,000 characters each) only when the selection shows it.
        let look = ctx.look_ahead();
        let content = match look.field("nodes").field("content").exists()
            || look.field("edges").field("node").field("content").exists()
        {
            true => domain::projects::Content::Read,
            false => domain::projects::Content::Skip,
        };
        let page = domain::projects::list(&svc(ctx).db.read, self.org_id(), req, content)
            .await
            .map_err(top_level)?;
        let org = self.clone();
        Ok(crate::graphql::projects::ProjectConnection::from_page(
            page,
            |p| p.id.0,
            |p| crate::graphql::projects::Project::listed(p, org.clone(), content),
        ))
    }

    /// Shared links, newest first: all of them for admins and owners, a member's own for
    /// members.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn shared_links(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::sharing::SharedLinkConnection> {
        self.member()?;
        let viewer = auth(ctx).user().map_err(top_level)?;
        let req = page_request(ctx, first, after)?;
        let page = domain::sharing::list(&svc(ctx).db.read, &self.view, viewer.id, req)
            .await
            .map_err(top_level)?;
        Ok(crate::graphql::sharing::SharedLinkConnection::from_page(
            page,
            |l| l.id,
            crate::graphql::sharing::SharedLink::new,
        ))
    }

    /// Webhook endpoints of this organization (ADMIN and OWNER, or an API key with
    /// `webhooks:write`).
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::webhooks::WebhookEndpoint>> {
        crate::graphql::webhooks::org_endpoints(ctx, self.org_id()).await
    }

    /// What happened here, newest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ActivityEventConnection> {
        self.member()?;
        let req = page_request(ctx, first, after)?;
        let page = orgs::activity(&svc(ctx).db.read, self.org_id(), req)
            .await
            .map_err(top_level)?;
        Ok(ActivityEventConnection::from_page(
            page,
            |e| e.id,
            |e| ActivityEvent(Arc::new(e)),
        ))
    }

    /// Growth of this organization in `[from, to)` (METRICS.md): its ADMINs and OWNERs,
    /// platform staff and API keys with `growth:read`; null and FORBIDDEN for anyone else. Without the plan's advanced metrics, `series`,
    /// `surfaces` and `topInviters` are null and `upgrade` says which plan has them.
    async fn growth(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "Some(crate::graphql::growth::Interval::Week)")] interval: Option<
            crate::graphql::growth::Interval,
        >,
    ) -> async_graphql::Result<Option<crate::graphql::growth::GrowthMetrics>> {
        crate::graphql::growth::organization(
            ctx,
            self.org_id(),
            crate::graphql::growth::question(from, to, interval),
        )
        .await
    }

    /// Where this organization's K, invite acceptance rate, activation rate and share
    /// conversion in `[from, to)` stand among organizations of its size: shown when at least
    /// 10 other organizations contribute, never naming one. Who may see it is who may see
    /// `growth` (null and FORBIDDEN for anyone else); rate-limited per organization.
    async fn benchmarks(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<Option<crate::graphql::benchmarks::Benchmarks>> {
        crate::graphql::benchmarks::organization(ctx, self.org_id(), from, to).await
    }
}

/// A user's role in an organization.
#[derive(Clone)]
pub struct Membership {
    /// The row.
    pub model: records::Membership,
    /// The organization, when already at hand.
    pub org: Option<Organization>,
    /// The user, when read with the membership.
    pub user: Option<records::User>,
}

#[Object]
impl Membership {
    /// The organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        if let Some(o) = &self.org {
            return Ok(o.clone());
        }
        let viewer = auth(ctx).user().map_err(top_level)?;
        orgs::access(&svc(ctx).db.read, viewer.id, self.model.organization_id)
            .await
            .map(Organization::from)
            .map_err(top_level)
    }

    /// The member.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        if let Some(u) = &self.user {
            return Ok(User::co_member(u.clone()));
        }
        loaders::user(ctx, self.model.user_id)
            .await?
            .map(User::co_member)
            .ok_or_else(|| top(TopLevelCode::NotFound, "User not found."))
    }

    /// Their role.
    async fn role(&self) -> Role {
        self.model.role.into()
    }

    /// When they joined.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.model.joined_at
    }
}

connection!(MembershipConnection, MembershipEdge, Membership, "members");
