//! Invitations: bulk send, re-send, revoke, accept, and the public preview.
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    auth, client,
    error::{payload, top_level, user_error, ErrorCode, Outcome, UserError},
    loaders,
    orgs::{Membership, Organization},
    svc,
    types::{Role, User},
};
use crate::domain::records;
use crate::domain::{
    ids::{InvitationId, OrgId, UserId},
    invitations::{self as inv, Status},
    orgs, DomainError,
};

/// Where an invitation stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "Status")]
pub enum InvitationStatus {
    /// Sent, not used, not expired.
    Pending,
    /// Used.
    Accepted,
    /// Past its expiry without being used (reported as soon as `expiresAt` has passed).
    Expired,
    /// Withdrawn.
    Revoked,
}

/// An invitation to join an organization: the pair (organization, email).
#[derive(Clone)]
pub struct Invitation {
    model: records::Invitation,
    org: Organization,
}

impl Invitation {
    /// An invitation of an organization the caller belongs to.
    pub fn new(model: records::Invitation, org: Organization) -> Self {
        Invitation { model, org }
    }
}

#[Object]
impl Invitation {
    /// Opaque id (`inv_…`).
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }
    /// The invitee's address (normalised).
    async fn email(&self) -> &str {
        &self.model.email
    }
    /// The role they get on accepting.
    async fn role(&self) -> Role {
        self.model.role.into()
    }
    /// PENDING, ACCEPTED, EXPIRED (as soon as `expiresAt` has passed) or REVOKED.
    async fn status(&self, ctx: &Context<'_>) -> InvitationStatus {
        inv::status(&self.model, svc(ctx).now()).into()
    }
    /// The organization.
    async fn organization(&self) -> Organization {
        self.org.clone()
    }
    /// Who sent it (the last sender).
    async fn invited_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        loaders::user(ctx, self.model.invited_by_user_id)
            .await?
            .map(User::co_member)
            .ok_or_else(|| top_level(DomainError::NotFound("User")))
    }
    /// Product surface the invite came from, e.g. "project-share-dialog".
    async fn surface(&self) -> Option<&str> {
        self.model.surface.as_deref()
    }
    /// First send.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    /// 7 days (configurable) after the last send.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.model.expires_at
    }
    /// Last send.
    async fn last_sent_at(&self) -> DateTime<Utc> {
        self.model.last_sent_at
    }
    /// How many times it was sent.
    async fn send_count(&self) -> i32 {
        self.model.send_count
    }
    /// First time the link was opened.
    async fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.model.opened_at
    }
    /// When it was accepted.
    async fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.model.accepted_at
    }
    /// Who accepted it.
    async fn accepted_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.model.accepted_by_user_id {
            None => Ok(None),
            Some(id) => Ok(loaders::user(ctx, id).await?.map(User::co_member)),
        }
    }
    /// The current link (`PUBLIC_URL/invite/{token}`), while pending; visible to its sender
    /// and to admins, so it can be copied again without a re-send.
    async fn url(&self, ctx: &Context<'_>) -> Option<String> {
        let viewer = auth(ctx).user().ok()?;
        inv::copyable_link(svc(ctx), &self.model, self.org.view(), viewer.id)
    }
}

/// PUBLIC: what an invitee sees before accepting.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct InvitationPreview {
    /// The organization's name.
    organization_name: String,
    /// Who invited them.
    inviter_name: String,
    /// The address the invitation was sent to.
    email: String,
    /// The role they get.
    role: Role,
    /// When the link stops working.
    expires_at: DateTime<Utc>,
    #[graphql(skip)]
    model: records::Invitation,
}

#[ComplexObject]
impl InvitationPreview {
    /// Where it stands.
    async fn status(&self, ctx: &Context<'_>) -> InvitationStatus {
        inv::status(&self.model, svc(ctx).now()).into()
    }
}

/// Input of `createInvitations`.
#[derive(InputObject)]
pub struct CreateInvitationsInput {
    /// Where to invite.
    organization_id: ID,
    /// 1..100 addresses; each is validated on its own.
    emails: Vec<String>,
    /// OWNER cannot be invited; ADMIN needs an ADMIN/OWNER caller.
    #[graphql(default_with = "Some(Role::Member)")]
    role: Option<Role>,
    /// Product surface label, e.g. "project-share-dialog".
    surface: Option<String>,
}

/// Result of `createInvitations`.
#[derive(SimpleObject, Default)]
pub struct CreateInvitationsPayload {
    /// The invitations that went out (new or re-sent).
    invitations: Vec<Invitation>,
    /// Per-address problems carry `field: ["input","emails","<i>"]`; the others still went out.
    user_errors: Vec<UserError>,
}

/// Result of an invitation mutation.
#[derive(SimpleObject, Default)]
pub struct InvitationPayload {
    /// The invitation after the change.
    invitation: Option<Invitation>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

/// A per-item error: like [`user_error`], but a rate limit is that item's userError (and
/// marks the operation's [`Outcome`] as worth retrying).
fn item_error(
    ctx: &Context<'_>,
    e: DomainError,
    field: Vec<String>,
) -> async_graphql::Result<UserError> {
    let mut ue = match e {
        DomainError::RateLimited { .. } => {
            Outcome::rate_limited(ctx);
            UserError::new(ErrorCode::RateLimited, e.to_string(), None)
        }
        other => user_error(other)?,
    };
    ue.field = Some(field);
    Ok(ue)
}

async fn org_of(
    ctx: &Context<'_>,
    viewer: UserId,
    org: OrgId,
) -> Result<Organization, DomainError> {
    orgs::access(&svc(ctx).db.read, viewer, org)
        .await
        .map(Organization::from)
}

#[derive(Default)]
/// Invitation queries.
pub struct InvitationQuery;

#[Object]
impl InvitationQuery {
    /// PUBLIC. What the holder of an invitation link sees; counts as opening it.
    async fn invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<Option<InvitationPreview>> {
        let p = inv::preview(svc(ctx), client(ctx), &token)
            .await
            .map_err(top_level)?;
        Ok(Some(InvitationPreview {
            organization_name: p.organization.name,
            inviter_name: p.inviter.name,
            email: p.invitation.email.clone(),
            role: p.invitation.role.into(),
            expires_at: p.invitation.expires_at,
            model: p.invitation,
        }))
    }
}

#[derive(Default)]
/// Invitation mutations.
pub struct InvitationMutation;

#[Object]
impl InvitationMutation {
    /// Invites up to 100 addresses. Each is validated on its own: an invalid address, an
    /// existing member (ALREADY_MEMBER) or a limit gives a userError with field
    /// ["input","emails","<i>"] and the others still go out. A pending invitation to the same
    /// address is re-sent (new token, new expiry), not duplicated.
    async fn create_invitations(
        &self,
        ctx: &Context<'_>,
        input: CreateInvitationsInput,
    ) -> async_graphql::Result<CreateInvitationsPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let org = OrgId::parse(&input.organization_id)?;
            let sent = inv::create(
                svc(ctx),
                user,
                inv::NewInvitations {
                    org,
                    emails: input.emails,
                    role: input.role.unwrap_or(Role::Member).into(),
                    surface: input.surface,
                },
            )
            .await?;
            let org = org_of(ctx, user.id, org).await?;
            Ok((sent, org))
        }
        .await;
        match r {
            Ok((sent, org)) => {
                let mut user_errors = Vec::with_capacity(sent.errors.len());
                for (i, e) in sent.errors {
                    user_errors.push(item_error(
                        ctx,
                        e,
                        vec!["input".into(), "emails".into(), i.to_string()],
                    )?);
                }
                Ok(CreateInvitationsPayload {
                    invitations: sent
                        .invitations
                        .into_iter()
                        .map(|m| Invitation::new(m, org.clone()))
                        .collect(),
                    user_errors,
                })
            }
            Err(e) => Ok(CreateInvitationsPayload {
                invitations: vec![],
                user_errors: vec![user_error(e)?],
            }),
        }
    }

    /// Re-sends an invitation: a new link (the old one stops working) and a new expiry.
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<InvitationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match InvitationId::parse(&id) {
            Ok(id) => inv::resend(svc(ctx), user, id).await,
            Err(e) => Err(e.into()),
        };
        invitation_payload(ctx, user.id, r).await
    }

    /// Revokes an invitation: its link stops working at once.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<InvitationPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = match InvitationId::parse(&id) {
            Ok(id) => inv::revoke(svc(ctx), user, id).await,
            Err(e) => Err(e.into()),
        };
        invitation_payload(ctx, user.id, r).await
    }

    /// Accepts an invitation as the signed-in user, whose email must match it. The address
    /// must be verified, unless the token is the one from the invitation's email (which
    /// verifies it): otherwise EMAIL_NOT_VERIFIED, and a verification email is sent.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<super::orgs::MembershipPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = inv::accept(svc(ctx), client(ctx), user, &token).await;
        payload(
            r,
            |m| {
                super::orgs::MembershipPayload::ok(Membership {
                    model: m,
                    org: None,
                    user: None,
                })
            },
            super::orgs::MembershipPayload::failed,
        )
    }
}

/// The payload of a mutation on one invitation, shown in its organization.
async fn invitation_payload(
    ctx: &Context<'_>,
    viewer: UserId,
    r: Result<records::Invitation, DomainError>,
) -> async_graphql::Result<InvitationPayload> {
    let r = match r {
        Ok(m) => org_of(ctx, viewer, m.organization_id)
            .await
            .map(|org| Invitation::new(m, org)),
        Err(e) => Err(e),
    };
    payload(
        r,
        |i| InvitationPayload {
            invitation: Some(i),
            user_errors: vec![],
        },
        |user_errors| InvitationPayload {
            invitation: None,
            user_errors,
        },
    )
}

super::connection::connection!(
    InvitationConnection,
    InvitationEdge,
    Invitation,
    "invitations"
);
