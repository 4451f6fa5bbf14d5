//! Output types shared by several areas.
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    auth,
    connection::{connection, page_cost, page_request},
    error::{top, top_level, TopLevelCode},
    loaders, svc,
};
use crate::domain::{
    self,
    activity::ActivityType as DActivityType,
    identity::AcquisitionSource as DSource,
    ids::{ActivityId, OrgId, UserId},
    orgs::{self, InvitePolicy as DPolicy, Role as DRole},
    plans::{FeatureKind, Grant},
};
use entity::{activity_events, memberships, organizations, users};

/// How a user came to the product.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AcquisitionSource {
    Organic,
    Invite,
    Referral,
    Share,
    Paid,
}

impl From<DSource> for AcquisitionSource {
    fn from(s: DSource) -> Self {
        match s {
            DSource::Organic => Self::Organic,
            DSource::Invite => Self::Invite,
            DSource::Referral => Self::Referral,
            DSource::Share => Self::Share,
            DSource::Paid => Self::Paid,
        }
    }
}

/// A member's role in an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Full control, including other owners and billing.
    Owner,
    /// Manages members (not owners), settings and integrations.
    Admin,
    /// Works in the organization.
    Member,
}

impl From<DRole> for Role {
    fn from(r: DRole) -> Self {
        match r {
            DRole::Owner => Role::Owner,
            DRole::Admin => Role::Admin,
            DRole::Member => Role::Member,
        }
    }
}

impl From<Role> for DRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => DRole::Owner,
            Role::Admin => DRole::Admin,
            Role::Member => DRole::Member,
        }
    }
}

/// Who may invite people.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum InvitePolicy {
    /// Every member.
    AnyMember,
    /// Admins and owners only.
    AdminsOnly,
}

impl From<DPolicy> for InvitePolicy {
    fn from(p: DPolicy) -> Self {
        match p {
            DPolicy::AnyMember => Self::AnyMember,
            DPolicy::AdminsOnly => Self::AdminsOnly,
        }
    }
}

impl From<InvitePolicy> for DPolicy {
    fn from(p: InvitePolicy) -> Self {
        match p {
            InvitePolicy::AnyMember => Self::AnyMember,
            InvitePolicy::AdminsOnly => Self::AdminsOnly,
        }
    }
}

/// The kind of a shared resource.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResourceType {
    /// A project.
    Project,
}

/// What happened.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ActivityType {
    MemberJoined,
    MemberRemoved,
    InvitationSent,
    InvitationAccepted,
    ProjectCreated,
    ProjectUpdated,
    CommentAdded,
    SharedLinkCreated,
    SharedLinkVisited,
    PlanChanged,
    LimitReached,
    /// A webhook endpoint was disabled (it answered 410 Gone or kept failing for 5 days).
    WebhookDisabled,
}

impl From<DActivityType> for ActivityType {
    fn from(t: DActivityType) -> Self {
        use DActivityType as D;
        match t {
            D::MemberJoined => Self::MemberJoined,
            D::MemberRemoved => Self::MemberRemoved,
            D::InvitationSent => Self::InvitationSent,
            D::InvitationAccepted => Self::InvitationAccepted,
            D::ProjectCreated => Self::ProjectCreated,
            D::ProjectUpdated => Self::ProjectUpdated,
            D::CommentAdded => Self::CommentAdded,
            D::SharedLinkCreated => Self::SharedLinkCreated,
            D::SharedLinkVisited => Self::SharedLinkVisited,
            D::PlanChanged => Self::PlanChanged,
            D::LimitReached => Self::LimitReached,
            D::WebhookDisabled => Self::WebhookDisabled,
        }
    }
}

/// How a plan feature is measured.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum EntitlementKind {
    /// On or off.
    Boolean,
    /// A cap on how many exist.
    Limit,
    /// A cap per billing period.
    PeriodicLimit,
}

impl From<FeatureKind> for EntitlementKind {
    fn from(k: FeatureKind) -> Self {
        match k {
            FeatureKind::Boolean => Self::Boolean,
            FeatureKind::Limit => Self::Limit,
            FeatureKind::PeriodicLimit => Self::PeriodicLimit,
        }
    }
}

/// A person with an account.
#[derive(Clone)]
pub struct User {
    model: users::Model,
    /// What the caller is known to be to this user, decided where the object is made.
    relation: Relation,
}

/// What the caller is to a user, when known without a query.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// To be checked on demand.
    Unknown,
    /// Certainly a co-member (e.g. listing an organization's members).
    CoMember,
    /// The user themselves (e.g. the payload of their own signUp, before any token was sent).
    Themselves,
}

impl User {
    /// A user whose email visibility is checked on demand.
    pub fn new(model: users::Model) -> Self {
        User {
            model,
            relation: Relation::Unknown,
        }
    }

    /// A user the caller shares an organization with.
    pub fn co_member(model: users::Model) -> Self {
        User {
            model,
            relation: Relation::CoMember,
        }
    }

    /// The caller themselves.
    pub fn themselves(model: users::Model) -> Self {
        User {
            model,
            relation: Relation::Themselves,
        }
    }

    fn is_viewer(&self, ctx: &Context<'_>) -> bool {
        self.relation == Relation::Themselves
            || auth(ctx).user().is_ok_and(|u| u.id == self.model.id)
    }

    fn own_only(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if self.is_viewer(ctx) {
            Ok(())
        } else {
            Err(top(
                TopLevelCode::Forbidden,
                "Only visible to the user themselves.",
            ))
        }
    }
}

#[Object]
impl User {
    /// Opaque id (`usr_…`).
    async fn id(&self) -> ID {
        ID(UserId(self.model.id).to_string())
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.model.name
    }

    /// Visible to the user and co-members only.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        if self.relation == Relation::CoMember || self.is_viewer(ctx) {
            return Ok(&self.model.email);
        }
        let viewer = auth(ctx).user().map_err(top_level)?;
        let shared = domain::identity::share_an_org(
            &svc(ctx).db.read,
            UserId(viewer.id),
            UserId(self.model.id),
        )
        .await
        .map_err(top_level)?;
        if shared {
            Ok(&self.model.email)
        } else {
            Err(top(
                TopLevelCode::Forbidden,
                "Emails are visible to co-members only.",
            ))
        }
    }

    /// When the user proved their email address (a link that arrived by email); null until
    /// then, and for anyone but the user themselves.
    async fn email_verified_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        self.model.email_verified_at.filter(|_| self.is_viewer(ctx))
    }

    /// How the user came: frozen at signup.
    async fn acquisition_source(&self) -> AcquisitionSource {
        DSource::parse(&self.model.acquisition_source)
            .unwrap_or(DSource::Organic)
            .into()
    }

    /// The inviter, sharer or referrer; null if organic or paid.
    async fn invited_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.model.invited_by_user_id {
            None => Ok(None),
            Some(id) => Ok(loaders::user(ctx, id).await?.map(User::new)),
        }
    }

    /// The user's own referral code; visible to the user only.
    async fn referral_code(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        self.own_only(ctx)?;
        Ok(&self.model.referral_code)
    }

    /// `PUBLIC_URL/r/{referralCode}`; visible to the user only.
    async fn referral_url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.own_only(ctx)?;
        Ok(format!(
            "{}/r/{}",
            svc(ctx).config.public_url,
            self.model.referral_code
        ))
    }

    /// First time the user reached the activation event.
    async fn activated_at(&self) -> Option<DateTime<Utc>> {
        self.model.activated_at
    }

    /// Platform staff (set with `kfactor staff grant`); null unless the caller is this user.
    async fn is_staff(&self, ctx: &Context<'_>) -> Option<bool> {
        self.is_viewer(ctx).then_some(self.model.is_staff)
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    /// Where the user is signed in (empty unless the caller is this user).
    async fn sessions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::accounts::Session>> {
        if !self.is_viewer(ctx) {
            return Ok(vec![]);
        }
        super::accounts::sessions_of(ctx, UserId(self.model.id)).await
    }

    /// The user's memberships (empty unless the caller is this user).
    async fn memberships(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Membership>> {
        if !self.is_viewer(ctx) {
            return Ok(vec![]);
        }
        let rows = orgs::memberships_of(&svc(ctx).db.read, UserId(self.model.id))
            .await
            .map_err(top_level)?;
        Ok(rows
            .into_iter()
            .map(|(m, o)| {
                let role = DRole::parse(&m.role);
                Membership {
                    model: m,
                    org: Some(Organization::new(o, role)),
                }
            })
            .collect())
    }

    /// The organization the user works in (null unless the caller is this user).
    async fn active_organization(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Organization>> {
        if !self.is_viewer(ctx) {
            return Ok(None);
        }
        let Some(org) = self.model.active_organization_id else {
            return Ok(None);
        };
        let found = orgs::find_with_role(&svc(ctx).db.read, OrgId(org), UserId(self.model.id))
            .await
            .map_err(top_level)?;
        Ok(found.map(|(o, r)| Organization::new(o, r)))
    }
}

/// A workspace: members, their projects, links, plan and activity.
#[derive(Clone)]
pub struct Organization {
    model: organizations::Model,
    /// The caller's role: constructing an `Organization` is proof the caller may see it.
    /// None: seen from the platform side (staff who are not members, API keys), which shows
    /// the organization but not what is inside it.
    role: Option<DRole>,
}

impl Organization {
    /// An organization the caller holds `role` in.
    pub fn new(model: organizations::Model, role: DRole) -> Self {
        Organization {
            model,
            role: Some(role),
        }
    }

    fn org_id(&self) -> OrgId {
        OrgId(self.model.id)
    }

    /// The organization row.
    pub fn model(&self) -> &organizations::Model {
        &self.model
    }

    /// The caller's role here; None when seen from the platform side.
    pub fn role(&self) -> Option<DRole> {
        self.role
    }

    /// Members only: what is inside an organization (its people, projects, links and
    /// activity) is never shown to API keys or to staff who are not members.
    fn member(&self) -> async_graphql::Result<DRole> {
        self.role.ok_or_else(|| {
            top(
                TopLevelCode::Forbidden,
                "Only members see this; API keys and platform staff see the organization, not what is inside it.",
            )
        })
    }
}

impl From<orgs::OrgAccess> for Organization {
    fn from(a: orgs::OrgAccess) -> Self {
        Organization::new(a.org, a.role)
    }
}

impl From<domain::access::OrgView> for Organization {
    fn from(v: domain::access::OrgView) -> Self {
        Organization {
            model: v.org,
            role: v.role,
        }
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
        &self.model.name
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    /// Set after `deleteOrganization`: when it will be removed (unless an owner restores
    /// it first).
    async fn deletion_scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.model.deletion_scheduled_for
    }

    /// Who may invite people.
    async fn invite_policy(&self) -> InvitePolicy {
        DPolicy::parse(&self.model.invite_policy).into()
    }

    /// The caller's role here (null for API keys and for staff who are not members).
    async fn viewer_role(&self) -> Option<Role> {
        self.role.map(Into::into)
    }

    /// The organization's plan.
    async fn plan(&self, ctx: &Context<'_>) -> Plan {
        let catalog = &svc(ctx).plans;
        let p = catalog
            .plan(&self.model.plan_key)
            .unwrap_or_else(|| catalog.default_plan());
        Plan(p.clone())
    }

    /// The current period of periodic limits (monthly from the billing anchor).
    async fn billing_period(&self, ctx: &Context<'_>) -> BillingPeriod {
        let (start, end) = domain::entitlements::period(self.model.billing_anchor, svc(ctx).now());
        BillingPeriod { start, end }
    }

    /// Plan, period and the billing provider's subscription (ADMIN and OWNER, staff, API
    /// keys).
    async fn billing(&self, ctx: &Context<'_>) -> async_graphql::Result<super::billing::Billing> {
        if self.role.is_some_and(|r| r < DRole::Admin) {
            return Err(top(
                TopLevelCode::Forbidden,
                "Only admins and owners see billing.",
            ));
        }
        super::billing::of(ctx, &self.model).await
    }

    /// Every feature of the catalog, for this organization.
    async fn entitlements(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Entitlement>> {
        let svc = svc(ctx);
        Ok(domain::entitlements::all(&svc.db.read, svc, &self.model)
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
            domain::entitlements::check(&svc.db.read, svc, &self.model, &feature)
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
        let req = page_request(first, after)?;
        let page = orgs::members(&svc(ctx).db.read, self.org_id(), req)
            .await
            .map_err(top_level)?;
        let org = self.clone();
        Ok(MembershipConnection::from_page(
            page,
            |m| m.id,
            |m| Membership {
                model: m,
                org: Some(org.clone()),
            },
        ))
    }

    /// Invitations, newest first, optionally only those with `status`.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        status: Option<super::invitations::InvitationStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::invitations::InvitationConnection> {
        self.member()?;
        let req = page_request(first, after)?;
        let page = domain::invitations::list(svc(ctx), self.org_id(), status.map(Into::into), req)
            .await
            .map_err(top_level)?;
        let org = self.clone();
        Ok(super::invitations::InvitationConnection::from_page(
            page,
            |i| i.id,
            |i| super::invitations::Invitation::new(i, org.clone()),
        ))
    }

    /// Projects, newest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::projects::ProjectConnection> {
        self.member()?;
        let req = page_request(first, after)?;
        let page = domain::projects::list(&svc(ctx).db.read, self.org_id(), req)
            .await
            .map_err(top_level)?;
        let org = self.clone();
        Ok(super::projects::ProjectConnection::from_page(
            page,
            |p| p.id,
            |p| super::projects::Project::member(p, org.clone()),
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
    ) -> async_graphql::Result<super::sharing::SharedLinkConnection> {
        let role = self.member()?;
        let viewer = auth(ctx).user().map_err(top_level)?;
        let req = page_request(first, after)?;
        let only_creator = (role < DRole::Admin).then_some(UserId(viewer.id));
        let page = domain::sharing::list(&svc(ctx).db.read, self.org_id(), only_creator, req)
            .await
            .map_err(top_level)?;
        Ok(super::sharing::SharedLinkConnection::from_page(
            page,
            |l| l.id,
            super::sharing::SharedLink::new,
        ))
    }

    /// Webhook endpoints of this organization (ADMIN and OWNER, or an API key with
    /// `webhooks:write`).
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::webhooks::WebhookEndpoint>> {
        super::webhooks::org_endpoints(ctx, self.org_id()).await
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
        let req = page_request(first, after)?;
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
        #[graphql(default_with = "Some(super::growth::Interval::Week)")] interval: Option<
            super::growth::Interval,
        >,
    ) -> async_graphql::Result<Option<super::growth::GrowthMetrics>> {
        super::growth::organization(
            ctx,
            self.org_id(),
            super::growth::question(from, to, interval),
        )
        .await
    }
}

/// A user's role in an organization.
#[derive(Clone)]
pub struct Membership {
    /// The row.
    pub model: memberships::Model,
    /// The organization, when already at hand.
    pub org: Option<Organization>,
}

#[Object]
impl Membership {
    /// The organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        if let Some(o) = &self.org {
            return Ok(o.clone());
        }
        let viewer = auth(ctx).user().map_err(top_level)?;
        orgs::access(
            &svc(ctx).db.read,
            UserId(viewer.id),
            OrgId(self.model.organization_id),
        )
        .await
        .map(Organization::from)
        .map_err(top_level)
    }

    /// The member.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        loaders::user(ctx, self.model.user_id)
            .await?
            .map(User::co_member)
            .ok_or_else(|| top(TopLevelCode::NotFound, "User not found."))
    }

    /// Their role.
    async fn role(&self) -> Role {
        DRole::parse(&self.model.role).into()
    }

    /// When they joined.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.model.joined_at
    }
}

/// Who did something: a user, or a guest who came through a shared link.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Actor {
    /// The guest's name, for guests.
    pub guest_name: Option<String>,
    #[graphql(skip)]
    user_id: Option<uuid::Uuid>,
}

impl Actor {
    /// An actor from stored columns.
    pub fn new(user_id: Option<uuid::Uuid>, guest_name: Option<String>) -> Self {
        Actor {
            guest_name,
            user_id,
        }
    }
}

#[ComplexObject]
impl Actor {
    /// The user, for signed-in actors.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.user_id {
            None => Ok(None),
            Some(id) => Ok(loaders::user(ctx, id).await?.map(User::new)),
        }
    }

    /// The user's name, or the guest's.
    async fn display_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        if let Some(id) = self.user_id {
            if let Some(u) = loaders::user(ctx, id).await? {
                return Ok(u.name);
            }
        }
        Ok(self.guest_name.clone().unwrap_or_else(|| "Someone".into()))
    }
}

/// One entry of an organization's activity feed.
#[derive(Clone)]
pub struct ActivityEvent(pub Arc<activity_events::Model>);

#[Object]
impl ActivityEvent {
    /// Opaque id (`act_…`).
    async fn id(&self) -> ID {
        ID(ActivityId(self.0.id).to_string())
    }

    /// What happened.
    #[graphql(name = "type")]
    async fn kind(&self) -> async_graphql::Result<ActivityType> {
        DActivityType::parse(&self.0.event_type)
            .map(Into::into)
            .ok_or_else(|| {
                super::error::internal(anyhow::anyhow!(
                    "unknown activity type {}",
                    self.0.event_type
                ))
            })
    }

    /// Who did it.
    async fn actor(&self) -> Option<Actor> {
        (self.0.actor_user_id.is_some() || self.0.actor_guest_name.is_some()).then(|| Actor {
            guest_name: self.0.actor_guest_name.clone(),
            user_id: self.0.actor_user_id,
        })
    }

    /// The organization it happened in.
    async fn organization_id(&self) -> ID {
        ID(OrgId(self.0.organization_id).to_string())
    }

    /// The kind of resource it happened to.
    async fn resource_type(&self) -> Option<ResourceType> {
        self.0.resource_type.as_ref().map(|_| ResourceType::Project)
    }

    /// The resource it happened to.
    async fn resource_id(&self) -> Option<ID> {
        self.0
            .resource_id
            .map(|id| ID(format!("prj_{}", id.simple())))
    }

    /// One human sentence, e.g. "Ana invited bo@acme.io".
    async fn summary(&self) -> &str {
        &self.0.summary
    }

    /// Machine-readable details.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.0.data.clone())
    }

    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A plan of the catalog.
#[derive(Clone)]
pub struct Plan(pub domain::plans::Plan);

#[Object]
impl Plan {
    /// Stable key, e.g. "free".
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Higher is more.
    async fn rank(&self) -> i32 {
        self.0.rank
    }

    /// Every feature of the catalog, as this plan grants it.
    async fn features(&self, ctx: &Context<'_>) -> Vec<PlanFeature> {
        let catalog = &svc(ctx).plans;
        catalog
            .features
            .iter()
            .map(|(name, f)| {
                let (enabled, limit) = match self.0.features.get(name) {
                    Some(Grant::Flag(b)) => (*b, None),
                    Some(Grant::Count(n)) => (true, Some((*n).min(i32::MAX as i64) as i32)),
                    _ => (true, None),
                };
                PlanFeature {
                    feature: name.clone(),
                    kind: f.kind.into(),
                    enabled,
                    limit,
                }
            })
            .collect()
    }
}

/// What a plan grants for one feature.
#[derive(SimpleObject, Clone)]
pub struct PlanFeature {
    /// Feature name, e.g. "projects".
    pub feature: String,
    /// How it is measured.
    pub kind: EntitlementKind,
    /// Whether the feature is available at all.
    pub enabled: bool,
    /// The cap; null means unlimited.
    pub limit: Option<i32>,
}

/// In-context call to action, e.g. "You've used 4 of 5 projects — upgrade to Pro for
/// unlimited projects".
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct UpgradePrompt {
    /// The feature that is limited or off.
    pub feature: String,
    /// Written for the end user.
    pub message: String,
    /// Key of the cheapest plan that lifts the limit (resolved as `plan`).
    #[graphql(skip)]
    pub plan_key: String,
    /// Where the frontend sends the user to upgrade.
    pub url: String,
}

impl From<domain::entitlements::UpgradePrompt> for UpgradePrompt {
    fn from(u: domain::entitlements::UpgradePrompt) -> Self {
        UpgradePrompt {
            feature: u.feature,
            message: u.message,
            plan_key: u.plan_key,
            url: u.url,
        }
    }
}

#[ComplexObject]
impl UpgradePrompt {
    /// The cheapest plan that lifts the limit or has the feature.
    async fn plan(&self, ctx: &Context<'_>) -> Plan {
        let catalog = &svc(ctx).plans;
        Plan(
            catalog
                .plan(&self.plan_key)
                .unwrap_or_else(|| catalog.default_plan())
                .clone(),
        )
    }
}

/// A billing period.
#[derive(SimpleObject, Clone)]
pub struct BillingPeriod {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end (when periodic limits reset).
    pub end: DateTime<Utc>,
}

/// Usage level of a limited feature.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UsageStatus {
    /// Below 80 % of the limit.
    Ok,
    /// From 80 %.
    Approaching,
    /// At the limit.
    Reached,
    /// A BOOLEAN feature that is off on this organization's plan.
    NotInPlan,
}

/// One feature as it stands for an organization: plan, overrides and usage together.
pub struct Entitlement(pub domain::entitlements::Entitlement);

#[Object]
impl Entitlement {
    /// e.g. "projects", "members", "active_shared_links", "invitations_per_month",
    /// "edit_links", "webhooks".
    async fn feature(&self) -> &str {
        &self.0.feature
    }
    /// How it is measured.
    async fn kind(&self) -> EntitlementKind {
        self.0.kind.into()
    }
    /// Whether it is available.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// The cap; null = unlimited.
    async fn limit(&self) -> Option<i32> {
        self.0.limit.map(clamp_i32)
    }
    /// Current usage.
    async fn used(&self) -> i32 {
        clamp_i32(self.0.used)
    }
    /// What is left; null = unlimited.
    async fn remaining(&self) -> Option<i32> {
        self.0.remaining().map(clamp_i32)
    }
    /// PERIODIC_LIMIT only: end of the current period.
    async fn resets_at(&self) -> Option<DateTime<Utc>> {
        self.0.resets_at
    }
    /// OK, APPROACHING (from 80 %) or REACHED; NOT_IN_PLAN for a BOOLEAN feature that is off.
    async fn status(&self) -> UsageStatus {
        match self.0.status() {
            domain::entitlements::UsageStatus::Ok => UsageStatus::Ok,
            domain::entitlements::UsageStatus::Approaching => UsageStatus::Approaching,
            domain::entitlements::UsageStatus::Reached => UsageStatus::Reached,
            domain::entitlements::UsageStatus::NotInPlan => UsageStatus::NotInPlan,
        }
    }
    /// How to lift it, when the status is not OK or the feature is off and a plan lifts it.
    async fn upgrade(&self) -> Option<UpgradePrompt> {
        self.0.upgrade.clone().map(Into::into)
    }
    /// A per-organization override is in force.
    async fn overridden(&self) -> bool {
        self.0.overridden
    }
}

fn clamp_i32(n: i64) -> i32 {
    n.clamp(0, i32::MAX as i64) as i32
}

connection!(MembershipConnection, MembershipEdge, Membership, "members");
connection!(
    ActivityEventConnection,
    ActivityEventEdge,
    ActivityEvent,
    "activity events"
);
