//! Password reset and change.
