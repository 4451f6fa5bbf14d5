//! SeaORM entities, one module a table. No business rules live here: the domain layer
//! (`kfactor::domain`) decides what is valid and who may see what.
pub mod activity_events;
pub mod memberships;
pub mod organizations;
pub mod sessions;
pub mod settings;
pub mod users;
pub mod webhook_messages;
