//! The enums stored in string columns. Each is a SeaORM active enum, so the column's type is
//! the enum itself: a row holding a value not listed here fails to load with
//! `DbErr::Type` instead of being read as some default (an unknown audience must never be
//! taken for ANYONE). The stored strings are exactly those written before these types
//! existed, so no data migration is needed. The domain re-exports them where they belong
//! (`kfactor::domain::orgs::Role`, ...); the GraphQL layer maps them with remote enums.
use sea_orm::entity::prelude::*;

/// Declares a string-valued active enum and its `&'static str` stored form from one list of
/// `Variant = "stored"` pairs, so the two can never disagree.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name {
            $( $(#[$vmeta])* #[sea_orm(string_value = $value)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored form, as the database holds it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $value, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum! {
    /// A member's role. Ordered: `Member < Admin < Owner`.
    #[derive(PartialOrd, Ord)]
    pub enum Role {
        /// Works in the organization.
        Member = "member",
        /// Manages members (not owners), settings and integrations.
        Admin = "admin",
        /// Full control, including billing and other owners.
        Owner = "owner",
    }
}

impl Role {
    /// The API (and webhook payload) form, e.g. `OWNER`.
    pub fn as_api(self) -> String {
        self.as_str().to_ascii_uppercase()
    }
}

stored_enum! {
    /// Who may invite people into an organization.
    pub enum InvitePolicy {
        /// Every member.
        AnyMember = "any_member",
        /// Admins and owners.
        AdminsOnly = "admins_only",
    }
}

stored_enum! {
    /// What a shared link allows. Ordered: `View < Comment < Edit`.
    #[derive(PartialOrd, Ord)]
    pub enum Permission {
        /// Read the resource.
        View = "view",
        /// Read and comment.
        Comment = "comment",
        /// Read, comment and edit.
        Edit = "edit",
    }
}

stored_enum! {
    /// Who may open a shared link.
    pub enum Audience {
        /// Anyone holding it.
        Anyone = "anyone",
        /// Signed-in members of the link's organization.
        Organization = "organization",
    }
}

stored_enum! {
    /// The kind of a shared resource.
    pub enum ResourceType {
        /// A project.
        Project = "PROJECT",
    }
}

stored_enum! {
    /// How a user came to kfactor; frozen at signup.
    pub enum AcquisitionSource {
        /// Found the product by themselves.
        Organic = "organic",
        /// Accepted an invitation.
        Invite = "invite",
        /// Followed a referral link.
        Referral = "referral",
        /// Signed up from a shared link.
        Share = "share",
        /// Came from a paid campaign.
        Paid = "paid",
    }
}

stored_enum! {
    /// The stored state of an invitation (EXPIRED is not stored: it follows from
    /// `expires_at`).
    pub enum InvitationState {
        /// Sent and not used.
        Pending = "pending",
        /// Used.
        Accepted = "accepted",
        /// Withdrawn.
        Revoked = "revoked",
    }
}

stored_enum! {
    /// The state of a webhook delivery.
    pub enum DeliveryStatus {
        /// Waiting for its next attempt.
        Pending = "pending",
        /// A 2xx answer was received.
        Succeeded = "succeeded",
        /// Retries are exhausted (or the endpoint is gone).
        Failed = "failed",
    }
}

stored_enum! {
    /// The kinds of activity the contract knows; the stored name is the API name.
    pub enum ActivityType {
        /// Someone joined the organization.
        MemberJoined = "MEMBER_JOINED",
        /// Someone left or was removed.
        MemberRemoved = "MEMBER_REMOVED",
        /// An invitation was sent (or sent again).
        InvitationSent = "INVITATION_SENT",
        /// An invitation was accepted.
        InvitationAccepted = "INVITATION_ACCEPTED",
        /// A project was created.
        ProjectCreated = "PROJECT_CREATED",
        /// A project was changed.
        ProjectUpdated = "PROJECT_UPDATED",
        /// A comment was added.
        CommentAdded = "COMMENT_ADDED",
        /// A shared link was created.
        SharedLinkCreated = "SHARED_LINK_CREATED",
        /// A shared link was opened.
        SharedLinkVisited = "SHARED_LINK_VISITED",
        /// The organization's plan changed.
        PlanChanged = "PLAN_CHANGED",
        /// A plan limit was reached.
        LimitReached = "LIMIT_REACHED",
        /// A webhook endpoint was disabled.
        WebhookDisabled = "WEBHOOK_DISABLED",
    }
}

stored_enum! {
    /// The state of a queued email.
    pub enum EmailStatus {
        /// Waiting for its next attempt.
        Pending = "pending",
        /// Handed to the transport.
        Sent = "sent",
        /// Retries are exhausted.
        Failed = "failed",
        /// Not sent because what it was about changed first (a newer send of the same
        /// invitation, a revoked invitation, a deleted account).
        Superseded = "superseded",
    }
}

stored_enum! {
    /// What a notification tells its recipient.
    pub enum NotificationKind {
        /// Someone commented on a project the recipient created or commented on.
        Comment = "comment",
        /// Someone mentioned the recipient in a comment.
        Mention = "mention",
        /// Someone accepted the recipient's invitation.
        InvitationAccepted = "invitation_accepted",
        /// Someone signed up through the recipient's shared link or referral code.
        Signup = "signup",
        /// The recipient's organization reached a plan limit (ADMINs and OWNERs).
        LimitReached = "limit_reached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ActiveEnum;

    #[test]
    fn stored_forms_round_trip_and_unknown_values_are_errors() {
        for r in Role::ALL {
            assert_eq!(Role::try_from_value(&r.to_value()).unwrap(), *r);
            assert_eq!(r.to_value(), r.as_str());
        }
        assert!(Audience::try_from_value(&"everyone".to_string()).is_err());
        assert!(DeliveryStatus::try_from_value(&"PENDING".to_string()).is_err());
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Permission::Edit > Permission::Comment && Permission::Comment > Permission::View);
        assert_eq!(Role::Owner.as_api(), "OWNER");
    }
}
