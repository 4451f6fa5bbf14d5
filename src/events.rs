//! The kinds of things that happen, as stored in the outbox and shown on the API: a leaf that
//! the outbox (which writes them) and the domain (which decides them) both import. The enum
//! itself is the stored column type, so it lives with the entities.
pub use entity::enums::ActivityType;
