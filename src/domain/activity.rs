//! Activity: what happened in an organization, newest first.
use sea_orm::Select;

use super::ids::OrgId;

pub use entity::enums::ActivityType;

/// Tenant-scoped query: the activity of one organization.
pub fn in_org(org: OrgId) -> Select<entity::activity_events::Entity> {
    super::tenancy::in_org(org)
}
