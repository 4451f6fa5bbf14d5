//! Output types shared by several areas.
use async_graphql::{Context, Enum, Object, ID};
use chrono::{DateTime, Utc};

use super::{
    auth,
    error::{top, top_level, TopLevelCode},
    loaders,
    orgs::{Membership, Organization},
    svc,
};
use crate::domain::records;
use crate::domain::{
    self,
    activity::ActivityType as DActivityType,
    identity::AcquisitionSource as DSource,
    orgs::{self, InvitePolicy as DPolicy, Role as DRole},
    plans::FeatureKind,
};

/// How a user came to the product.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DSource")]
#[allow(missing_docs)]
pub enum AcquisitionSource {
    Organic,
    Invite,
    Referral,
    Share,
    Paid,
}

/// A member's role in an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DRole")]
pub enum Role {
    /// Full control, including other owners and billing.
    Owner,
    /// Manages members (not owners), settings and integrations.
    Admin,
    /// Works in the organization.
    Member,
}

/// Who may invite people.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DPolicy")]
pub enum InvitePolicy {
    /// Every member.
    AnyMember,
    /// Admins and owners only.
    AdminsOnly,
}

/// The kind of a shared resource.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::sharing::ResourceType")]
pub enum ResourceType {
    /// A project.
    Project,
}

/// What happened.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE", remote = "DActivityType")]
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

/// How a plan feature is measured.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "FeatureKind")]
pub enum EntitlementKind {
    /// On or off.
    Boolean,
    /// A cap on how many exist.
    Limit,
    /// A cap per billing period.
    PeriodicLimit,
}

/// A person with an account.
#[derive(Clone)]
pub struct User {
    model: records::User,
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
    pub fn new(model: records::User) -> Self {
        User {
            model,
            relation: Relation::Unknown,
        }
    }

    /// A user the caller shares an organization with.
    pub fn co_member(model: records::User) -> Self {
        User {
            model,
            relation: Relation::CoMember,
        }
    }

    /// The caller themselves.
    pub fn themselves(model: records::User) -> Self {
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
        ID(self.model.id.to_string())
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
        let shared = domain::identity::share_an_org(&svc(ctx).db.read, viewer.id, self.model.id)
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
        self.model.acquisition_source.into()
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
        super::accounts::sessions_of(ctx, self.model.id).await
    }

    /// Your notifications, newest first (`unreadOnly`: the unread ones only); only visible
    /// to the user themselves.
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = false)] unread_only: bool,
    ) -> async_graphql::Result<super::notifications::NotificationConnection> {
        self.own_only(ctx)?;
        super::notifications::list(ctx, self.model.id, first, after, unread_only).await
    }

    /// How many of your notifications are unread; only visible to the user themselves.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        self.own_only(ctx)?;
        super::notifications::unread(ctx, self.model.id).await
    }

    /// Which notifications you get and whether they are emailed; only visible to the user
    /// themselves.
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::notifications::NotificationPreferences> {
        self.own_only(ctx)?;
        super::notifications::preferences(ctx, self.model.id).await
    }

    /// The user's memberships (empty unless the caller is this user).
    async fn memberships(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Membership>> {
        if !self.is_viewer(ctx) {
            return Ok(vec![]);
        }
        let rows = orgs::memberships_of(&svc(ctx).db.read, self.model.id)
            .await
            .map_err(top_level)?;
        Ok(rows
            .into_iter()
            .map(|(m, o)| {
                let role = m.role;
                Membership {
                    model: m,
                    org: Some(Organization::new(o, role)),
                    user: None,
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
        let found = orgs::find_with_role(&svc(ctx).db.read, org, self.model.id)
            .await
            .map_err(top_level)?;
        Ok(found.map(|(o, r)| Organization::new(o, r)))
    }
}
