//! Typed, prefixed identifiers. Underneath every id is a time-ordered UUIDv7; on the API it
//! is `<prefix>_<32 hex>`, so an organization id can never be passed where a user id is
//! expected. They live here, in the leaf `entity` crate, so that they can be the types of
//! the id and foreign-key columns (SeaORM value types stored as the plain UUID, so no data
//! changes); `kfactor::domain::ids` re-exports them.
use std::fmt;

use sea_orm::{
    sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr},
    ColIdx, DbErr, QueryResult, TryFromU64, TryGetError, TryGetable, Value,
};
use uuid::Uuid;

/// A string that is not an id of the expected kind. Ids are opaque to clients, so a
/// malformed one simply names nothing: the domain maps this to "not found".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownId(
    /// What was looked for, e.g. "Organization".
    pub &'static str,
);

impl fmt::Display for UnknownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} not found.", self.0)
    }
}

impl std::error::Error for UnknownId {}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        // Serialized as the bare UUID (internal messages between instances; the API form
        // is `Display`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The prefix of this id on the API.
            pub const PREFIX: &'static str = $prefix;

            /// The UUID's bytes (keys and sealing contexts are derived from them).
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// A new, time-ordered id.
            pub fn generate() -> Self {
                $name(Uuid::now_v7())
            }

            /// Parses the API form; anything else is "not found" (ids are opaque to clients,
            /// so a malformed one simply names nothing).
            pub fn parse(s: &str) -> Result<Self, UnknownId> {
                s.strip_prefix(concat!($prefix, "_"))
                    .filter(|hex| hex.len() == 32)
                    .and_then(|hex| Uuid::try_parse(hex).ok())
                    .map($name)
                    .ok_or(UnknownId($what))
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

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        // Stored as the bare UUID, exactly like the `Uuid` columns they replace.
        impl From<$name> for Value {
            fn from(id: $name) -> Value {
                Value::from(id.0)
            }
        }

        impl TryGetable for $name {
            fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
                Uuid::try_get_by(res, idx).map($name)
            }
        }

        impl ValueType for $name {
            fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
                <Uuid as ValueType>::try_from(v).map($name)
            }
            fn type_name() -> String {
                stringify!($name).to_owned()
            }
            fn array_type() -> ArrayType {
                <Uuid as ValueType>::array_type()
            }
            fn column_type() -> ColumnType {
                <Uuid as ValueType>::column_type()
            }
        }

        impl Nullable for $name {
            fn null() -> Value {
                <Uuid as Nullable>::null()
            }
        }

        impl TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, DbErr> {
                Err(DbErr::ConvertFromU64(stringify!($name)))
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
typed_id!(
    /// A notification.
    NotificationId, "ntf", "Notification");

typed_id!(
    /// A webhook message (one event for every endpoint that wants it); its API form is the
    /// Standard Webhooks `webhook-id` header, stable across retries.
    WebhookMessageId, "msg", "Webhook message");
typed_id!(
    /// One attempt to deliver a webhook message to an endpoint.
    WebhookAttemptId, "wha", "Webhook attempt");
typed_id!(
    /// A signing secret of a webhook endpoint.
    WebhookSecretId, "whs", "Webhook secret");
typed_id!(
    /// A queued email.
    EmailId, "eml", "Email");
typed_id!(
    /// A single-use emailed link (verification, password reset).
    EmailTokenId, "etk", "Email token");
typed_id!(
    /// One sending of an invitation (the first or a resend).
    InvitationSendId, "ivs", "Invitation send");
typed_id!(
    /// One visit of a shared link.
    LinkVisitId, "vis", "Link visit");
typed_id!(
    /// A referral fact (invited, shared, accepted, signed up).
    ReferralEventId, "ref", "Referral event");
typed_id!(
    /// One weekly digest run (for an organization or the platform).
    DigestRunId, "dgr", "Digest run");

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
