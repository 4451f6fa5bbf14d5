//! An invitation: the pair (organization, email). Its token is derived, never stored.
use crate::ids::{InvitationId, OrgId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: InvitationId,
    pub organization_id: OrgId,
    /// Normalised (trimmed, lower-cased).
    pub email: String,
    /// owner | admin | member (never owner in practice).
    pub role: crate::enums::Role,
    pub invited_by_user_id: UserId,
    /// Product surface it came from, e.g. "project-share-dialog".
    pub surface: Option<String>,
    /// pending | accepted | revoked (expired is derived from `expires_at`).
    pub status: crate::enums::InvitationState,
    /// Bumped by every re-send: older tokens stop verifying.
    pub token_version: i32,
    /// The email already had an account (or was the inviter's own) at the first send.
    pub team_invite: bool,
    /// First send.
    pub created_at: DateTimeUtc,
    pub last_sent_at: DateTimeUtc,
    pub send_count: i32,
    pub expires_at: DateTimeUtc,
    pub opened_at: Option<DateTimeUtc>,
    pub accepted_at: Option<DateTimeUtc>,
    pub accepted_by_user_id: Option<UserId>,
    /// Who sent the first send; kept when a revival changes `invited_by_user_id`.
    pub first_sent_by_user_id: Option<UserId>,
    /// First open of any round's link (an accept counts as an open); never reset.
    pub first_opened_at: Option<DateTimeUtc>,
    /// First acceptance of any round; never reset.
    pub first_accepted_at: Option<DateTimeUtc>,
    /// Who accepted first; never reset.
    pub first_accepted_by_user_id: Option<UserId>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
