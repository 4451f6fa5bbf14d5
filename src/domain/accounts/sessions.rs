//! Sessions: list, revoke, log out everywhere.
