//! Organizations and memberships.
use async_graphql::{Context, Object, SimpleObject, ID};

use super::{
    auth,
    error::{payload, top_level, UserError},
    plans::{Entitlement, Plan},
    svc,
    types::{InvitePolicy, Role},
};
use crate::domain::{
    access, billing,
    ids::{MembershipId, OrgId, UserId},
    orgs, DomainResult,
};

mod organization;

pub use organization::{Membership, Organization};

/// Result of an organization mutation.
#[derive(SimpleObject, Default)]
pub struct OrganizationPayload {
    /// The organization after the change.
    organization: Option<Organization>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

/// Result of a membership mutation.
#[derive(SimpleObject, Default)]
pub struct MembershipPayload {
    /// The membership after the change.
    membership: Option<Membership>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

impl MembershipPayload {
    /// Success.
    pub fn ok(m: Membership) -> Self {
        MembershipPayload {
            membership: Some(m),
            user_errors: vec![],
        }
    }

    /// Failure.
    pub fn failed(user_errors: Vec<UserError>) -> Self {
        MembershipPayload {
            membership: None,
            user_errors,
        }
    }
}

/// Result of `changePlan`.
#[derive(SimpleObject, Default)]
pub struct ChangePlanPayload {
    /// The organization on its new plan.
    organization: Option<Organization>,
    /// The plan before the change.
    previous_plan: Option<Plan>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

/// Result of a removal.
#[derive(SimpleObject, Default)]
pub struct DeletePayload {
    /// Id of what was removed.
    deleted_id: Option<ID>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

fn org_payload(r: DomainResult<orgs::OrgAccess>) -> async_graphql::Result<OrganizationPayload> {
    payload(
        r,
        |a| OrganizationPayload {
            organization: Some(a.into()),
            user_errors: vec![],
        },
        |user_errors| OrganizationPayload {
            organization: None,
            user_errors,
        },
    )
}

impl DeletePayload {
    /// Builds the payload from a domain result carrying the deleted id.
    pub fn from(r: DomainResult<String>) -> async_graphql::Result<Self> {
        payload(
            r,
            |id| DeletePayload {
                deleted_id: Some(ID(id)),
                user_errors: vec![],
            },
            |user_errors| DeletePayload {
                deleted_id: None,
                user_errors,
            },
        )
    }
}

fn deleted(r: DomainResult<MembershipId>) -> async_graphql::Result<DeletePayload> {
    DeletePayload::from(r.map(|id| id.to_string()))
}

#[derive(Default)]
/// Organization queries.
pub struct OrgQuery;

#[Object]
impl OrgQuery {
    /// An organization the caller belongs to. Non-members get null and a FORBIDDEN error.
    /// Platform staff and API keys with a scope see any organization, from the outside:
    /// its name, plan, billing and entitlements, not its members, projects, links or activity.
    async fn organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Organization>> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let org = OrgId::parse(&id).map_err(|e| top_level(e.into()))?;
        access::org_view(&svc(ctx).db.read, caller, org)
            .await
            .map(|v| Some(v.into()))
            .map_err(top_level)
    }

    /// PUBLIC. The plan catalog, cheapest first.
    async fn plans(&self, ctx: &Context<'_>) -> Vec<Plan> {
        svc(ctx).plans.plans.iter().cloned().map(Plan).collect()
    }
}

#[derive(Default)]
/// Organization mutations.
pub struct OrgMutation;

#[Object]
impl OrgMutation {
    /// Creates an organization; the caller becomes its OWNER.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<OrganizationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        org_payload(orgs::create(svc(ctx), user, &name).await)
    }

    /// Renames an organization (ADMIN or OWNER).
    async fn rename_organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
    ) -> async_graphql::Result<OrganizationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match OrgId::parse(&id) {
            Ok(org) => orgs::rename(svc(ctx), user.id, org, &name).await,
            Err(e) => Err(e.into()),
        };
        org_payload(r)
    }

    /// Sets who may invite (ADMIN or OWNER).
    async fn set_invite_policy(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        policy: InvitePolicy,
    ) -> async_graphql::Result<OrganizationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match OrgId::parse(&organization_id) {
            Ok(org) => orgs::set_invite_policy(svc(ctx), user.id, org, policy.into()).await,
            Err(e) => Err(e.into()),
        };
        org_payload(r)
    }

    /// Makes an organization the caller's active one.
    async fn set_active_organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<OrganizationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match OrgId::parse(&id) {
            Ok(org) => orgs::set_active(svc(ctx), user, org).await,
            Err(e) => Err(e.into()),
        };
        org_payload(r)
    }

    /// Changes a member's role. ADMIN and OWNER may; only an OWNER makes or changes an owner;
    /// the last owner cannot be demoted (LAST_OWNER).
    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        user_id: ID,
        role: Role,
    ) -> async_graphql::Result<MembershipPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let org = OrgId::parse(&organization_id)?;
            let target = UserId::parse(&user_id)?;
            orgs::change_role(svc(ctx), user.id, org, target, role.into()).await
        }
        .await;
        payload(
            r,
            |m| MembershipPayload {
                membership: Some(Membership {
                    model: m,
                    org: None,
                    user: None,
                }),
                user_errors: vec![],
            },
            |user_errors| MembershipPayload {
                membership: None,
                user_errors,
            },
        )
    }

    /// Removes a member (ADMIN or OWNER; only an OWNER removes an owner). LAST_OWNER guards
    /// the last owner.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        user_id: ID,
    ) -> async_graphql::Result<DeletePayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let org = OrgId::parse(&organization_id)?;
            let target = UserId::parse(&user_id)?;
            orgs::remove_member(svc(ctx), user, org, target).await
        }
        .await;
        deleted(r)
    }

    /// Changes the plan, effective at once: platform staff or an API key with `plans:write`.
    /// Owners upgrade through checkout: they get PERMISSION_DENIED with an `upgrade` prompt
    /// whose URL leads there. Usage counted in the current period is kept; a downgrade takes
    /// nothing away, it only refuses new creation beyond the new limits.
    async fn change_plan(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        plan: String,
    ) -> async_graphql::Result<ChangePlanPayload> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let r = async {
            let org = OrgId::parse(&organization_id)?;
            billing::change_plan(svc(ctx), caller, org, &plan).await
        }
        .await;
        payload(
            r,
            |(view, previous)| ChangePlanPayload {
                organization: Some(view.into()),
                previous_plan: Some(Plan(previous)),
                user_errors: vec![],
            },
            |user_errors| ChangePlanPayload {
                user_errors,
                ..Default::default()
            },
        )
    }

    /// Staff: overrides one feature for one organization ("more generous wins" against the
    /// plan). `limit: -1` means unlimited; with neither `limit` nor `enabled` the override is
    /// removed. `expiresAt` ends it automatically.
    async fn set_entitlement_override(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        feature: String,
        limit: Option<i32>,
        enabled: Option<bool>,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> async_graphql::Result<Entitlement> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let org = OrgId::parse(&organization_id).map_err(|e| top_level(e.into()))?;
        let (limit, unlimited) = match limit {
            Some(-1) => (None, true),
            Some(n) => (Some(n as i64), false),
            None => (None, false),
        };
        let svc = svc(ctx);
        let change = crate::domain::entitlements::OverrideChange {
            feature: &feature,
            limit,
            unlimited,
            enabled,
            expires_at,
        };
        let o = crate::domain::entitlements::set_override(svc, caller, org, change)
            .await
            .map_err(top_level)?;
        crate::domain::entitlements::check(&svc.db.read, svc, &o, &feature)
            .await
            .map_err(top_level)?
            .map(Entitlement)
            .ok_or_else(|| top_level(crate::domain::DomainError::NotFound("Feature")))
    }

    /// Deletes an organization (OWNER): after the grace period
    /// (`KFACTOR_ORGANIZATION_DELETION_GRACE_DAYS`, `deletionScheduledFor`) its projects,
    /// shared links, webhook endpoints and members go. Until then members keep working in
    /// it, its shared and invitation links stop working, and an owner can
    /// `restoreOrganization`.
    async fn delete_organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<OrganizationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match OrgId::parse(&id) {
            Ok(org) => crate::domain::deletion::delete_organization(svc(ctx), user, org).await,
            Err(e) => Err(e.into()),
        };
        org_payload(r)
    }

    /// Undoes `deleteOrganization` during its grace period (OWNER).
    async fn restore_organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<OrganizationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match OrgId::parse(&id) {
            Ok(org) => crate::domain::deletion::restore_organization(svc(ctx), user, org).await,
            Err(e) => Err(e.into()),
        };
        org_payload(r)
    }

    /// The caller leaves an organization. LAST_OWNER guards the last owner.
    async fn leave_organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<DeletePayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match OrgId::parse(&id) {
            Ok(org) => orgs::leave(svc(ctx), user, org).await,
            Err(e) => Err(e.into()),
        };
        deleted(r)
    }
}
