//! Typed, prefixed identifiers. Underneath every id is a time-ordered UUIDv7; on the API it
//! is `<prefix>_<32 hex>`, so an organization id can never be passed where a user id is
//! expected.
use std::fmt;

use uuid::Uuid;

use super::error::DomainError;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The prefix of this id on the API.
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered id.
            pub fn generate() -> Self {
                $name(Uuid::now_v7())
            }

            /// Parses the API form; anything else is "not found" (ids are opaque to clients,
            /// so a malformed one simply names nothing).
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                s.strip_prefix(concat!($prefix, "_"))
                    .filter(|hex| hex.len() == 32)
                    .and_then(|hex| Uuid::try_parse(hex).ok())
                    .map($name)
                    .ok_or(DomainError::NotFound($what))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }
    };
}

typed_id!(
    /// A user.
    UserId, "usr", "User");
typed_id!(
    /// An organization.
    OrgId, "org", "Organization");
typed_id!(
    /// A membership.
    MembershipId, "mem", "Membership");
typed_id!(
    /// An activity event.
    ActivityId, "act", "Activity event");
typed_id!(
    /// An invitation.
    InvitationId, "inv", "Invitation");
typed_id!(
    /// A project.
    ProjectId, "prj", "Project");
typed_id!(
    /// A comment.
    CommentId, "cmt", "Comment");
typed_id!(
    /// A shared link.
    SharedLinkId, "lnk", "Shared link");
typed_id!(
    /// A webhook endpoint.
    WebhookEndpointId, "whe", "Webhook endpoint");
typed_id!(
    /// A webhook delivery (one message to one endpoint).
    WebhookDeliveryId, "whd", "Webhook delivery");
typed_id!(
    /// A server-to-server API key.
    ApiKeyId, "key", "API key");
typed_id!(
    /// A signed-in session.
    SessionId, "ses", "Session");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_prefixes() {
        let id = OrgId::generate();
        let s = id.to_string();
        assert!(s.starts_with("org_") && s.len() == 36);
        assert_eq!(OrgId::parse(&s).unwrap(), id);
        assert!(UserId::parse(&s).is_err());
        assert!(OrgId::parse("org_nothex").is_err());
    }
}
