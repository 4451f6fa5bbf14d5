//! Outbound webhooks, a worker: the dispatcher turns outbox messages into deliveries and
//! sends them with retries, signed with `crate::crypto::signing`, through a client that
//! `crate::egress` guards against private addresses.
//!
//! Rules (who may manage which endpoint, validation, rotation) live in
//! `crate::domain::webhooks`; this module only moves bytes and records outcomes.
pub mod dispatcher;

pub use dispatcher::{spawn, Dispatcher};
