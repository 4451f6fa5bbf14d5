//! SeaORM entities, one module a table. No business rules live here: the domain layer
//! (`kfactor::domain`) decides what is valid and who may see what.
pub mod activity_events;
pub mod comments;
pub mod email_tokens;
pub mod emails;
pub mod entitlement_overrides;
pub mod idempotency_keys;
pub mod invitation_sends;
pub mod invitations;
pub mod link_visitors;
pub mod link_visits;
pub mod memberships;
pub mod organizations;
pub mod projects;
pub mod rate_limits;
pub mod referral_events;
pub mod sessions;
pub mod settings;
pub mod shared_links;
pub mod usage_alerts;
pub mod usage_counters;
pub mod users;
pub mod webhook_attempts;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
pub mod webhook_messages;
pub mod webhook_secrets;
