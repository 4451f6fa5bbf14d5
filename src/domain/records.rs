//! The stored records the rules hand out, by their domain names. Resolvers and pages shape
//! these for their callers; they get them from domain functions and never query the tables
//! themselves, so this is the only door from the transport layers (`graphql`, `http`) to
//! the row types.
/// A user account.
pub type User = entity::users::Model;
/// A signed-in session (its token is stored only as a hash).
pub type Session = entity::sessions::Model;
/// An organization.
pub type Organization = entity::organizations::Model;
/// A user's membership of an organization, with its role.
pub type Membership = entity::memberships::Model;
/// One thing that happened in an organization's feed.
pub type Activity = entity::activity_events::Model;
/// A project, the shared artifact.
pub type Project = entity::projects::Model;
/// A comment on a project.
pub type Comment = entity::comments::Model;
/// A shared link to a project.
pub type SharedLink = entity::shared_links::Model;
/// An invitation to join an organization.
pub type Invitation = entity::invitations::Model;
/// A registered webhook endpoint.
pub type WebhookEndpoint = entity::webhook_endpoints::Model;
/// One attempt to deliver a webhook message to an endpoint.
pub type WebhookAttempt = entity::webhook_attempts::Model;
/// The billing provider's subscription of an organization.
pub type ProviderSubscription = entity::stripe_subscriptions::Model;
/// A notification of one user.
pub type Notification = entity::notifications::Model;
pub use entity::{email_tokens::Purpose as EmailPurpose, stripe_subscriptions::SubscriptionStatus};
