//! Tenancy in the query: every lookup of an org-owned row names the organization (or the
//! caller whose memberships bound it) in its WHERE clause, so a row of another tenant is
//! never loaded in the first place, rather than loaded and checked afterwards. A row of an
//! organization the caller does not belong to is therefore simply not found, and says
//! nothing about whether it exists.
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ColumnTrait, EntityTrait, QueryFilter, Select,
};
use uuid::Uuid;

use super::ids::{
    ActivityId, CommentId, InvitationId, MembershipId, OrgId, ProjectId, SharedLinkId, UserId,
    WebhookDeliveryId, WebhookEndpointId,
};
use entity::{
    activity_events, comments, invitations, memberships, projects, shared_links,
    webhook_deliveries, webhook_endpoints,
};

/// An entity whose rows belong to one organization.
pub trait OrgOwned: EntityTrait {
    /// The typed id of a row, so that an id of another kind cannot be passed.
    type Id: Copy + Into<Uuid>;
    /// The column holding the owning organization.
    const ORG: Self::Column;
    /// The primary-key column.
    const ID: Self::Column;
}

macro_rules! org_owned {
    ($($entity:ident: $id:ident),+ $(,)?) => {
        $(impl OrgOwned for $entity::Entity {
            type Id = $id;
            const ORG: $entity::Column = $entity::Column::OrganizationId;
            const ID: $entity::Column = $entity::Column::Id;
        })+
    };
}

org_owned!(
    projects: ProjectId,
    comments: CommentId,
    shared_links: SharedLinkId,
    invitations: InvitationId,
    memberships: MembershipId,
    activity_events: ActivityId,
    webhook_endpoints: WebhookEndpointId,
);

/// The rows of one organization.
pub fn in_org<E: OrgOwned>(org: OrgId) -> Select<E> {
    E::find().filter(E::ORG.eq(org.0))
}

/// One row by id, only if it belongs to `org`.
pub fn find_in_org<E: OrgOwned>(org: OrgId, id: E::Id) -> Select<E> {
    in_org::<E>(org).filter(E::ID.eq(id.into()))
}

/// One row by id, only if it belongs to an organization `user` is a member of.
pub fn find_for_member<E: OrgOwned>(user: UserId, id: E::Id) -> Select<E> {
    E::find()
        .filter(E::ID.eq(id.into()))
        .filter(E::ORG.in_subquery(orgs_of(user)))
}

/// `SELECT organization_id FROM memberships WHERE user_id = ?`
fn orgs_of(user: UserId) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(memberships::Column::OrganizationId)
        .from(memberships::Entity)
        .and_where(Expr::col(memberships::Column::UserId).eq(user.0))
        .to_owned()
}

/// A webhook delivery by id, only if its endpoint belongs to `org` (deliveries hold no
/// organization of their own: they inherit their endpoint's).
pub fn delivery_in_org(org: OrgId, id: WebhookDeliveryId) -> Select<webhook_deliveries::Entity> {
    webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::Id.eq(id.0))
        .filter(
            webhook_deliveries::Column::EndpointId.in_subquery(
                Query::select()
                    .column(webhook_endpoints::Column::Id)
                    .from(webhook_endpoints::Entity)
                    .and_where(Expr::col(webhook_endpoints::Column::OrganizationId).eq(org.0))
                    .to_owned(),
            ),
        )
}

/// The webhook endpoints a signed-in user may reach: those of their organizations, and
/// the platform's (no organization) when they are staff.
fn endpoints_of(user: UserId, staff: bool) -> sea_orm::Condition {
    let mut reach = sea_orm::Condition::any()
        .add(webhook_endpoints::Column::OrganizationId.in_subquery(orgs_of(user)));
    if staff {
        reach = reach.add(webhook_endpoints::Column::OrganizationId.is_null());
    }
    reach
}

/// A webhook endpoint by id, only if `user` may reach it (see [`endpoints_of`]). API keys
/// span every organization by design and look endpoints up by id alone.
pub fn endpoint_for_user(
    user: UserId,
    staff: bool,
    id: WebhookEndpointId,
) -> Select<webhook_endpoints::Entity> {
    webhook_endpoints::Entity::find_by_id(id.0).filter(endpoints_of(user, staff))
}

/// A webhook delivery by id, only if its endpoint is one `user` may reach (see
/// [`endpoint_for_user`]).
pub fn delivery_for_user(
    user: UserId,
    staff: bool,
    id: WebhookDeliveryId,
) -> Select<webhook_deliveries::Entity> {
    webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::Id.eq(id.0))
        .filter(
            webhook_deliveries::Column::EndpointId.in_subquery(
                Query::select()
                    .column(webhook_endpoints::Column::Id)
                    .from(webhook_endpoints::Entity)
                    .cond_where(endpoints_of(user, staff))
                    .to_owned(),
            ),
        )
}
