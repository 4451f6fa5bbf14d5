//! kfactor's integration tests: one binary, a real server per test, on SQLite by default
//! and on PostgreSQL when TEST_DATABASE_URL is set.
mod helpers;

mod accounts;
mod api_keys;
mod billing;
mod cli;
mod confirming;
mod deletion;
mod digest;
mod error_codes;
mod growth;
mod http;
mod identity;
mod invitations;
mod leaving;
mod limits;
mod orgs;
mod outbox;
mod pages;
mod plans;
mod projects;
mod referrals;
mod schema;
mod secrets;
mod sessions;
mod sharing;
mod subscriptions;
mod webhooks;
mod ws_protocol;
