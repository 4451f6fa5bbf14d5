//! Outbound webhooks: Standard Webhooks signing, the SSRF guard, and the dispatcher that
//! turns outbox messages into deliveries and sends them with retries.
//!
//! Rules (who may manage which endpoint, validation, rotation) live in
//! `crate::domain::webhooks`; this module only moves bytes and records outcomes.
pub mod dispatcher;
pub mod signing;
pub mod ssrf;

pub use dispatcher::{spawn, Dispatcher};
