//! Typed, prefixed identifiers (defined in the leaf `entity` crate so that they can be column
//! types; see [`entity::ids`]). A malformed id is "not found".
pub use entity::ids::*;

use super::error::DomainError;

impl From<UnknownId> for DomainError {
    fn from(e: UnknownId) -> Self {
        DomainError::NotFound(e.0)
    }
}
