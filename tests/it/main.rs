//! kfactor's integration tests: one binary, a real server per test, on SQLite by default
//! and on PostgreSQL when TEST_DATABASE_URL is set.
mod helpers;

mod accounts;
mod api_keys;
mod billing;
mod cli;
mod deletion;
mod digest;
mod growth;
mod http;
mod identity;
mod invitations;
mod limits;
mod orgs;
mod outbox;
mod pages;
mod plans;
mod projects;
mod referrals;
mod schema;
mod sessions;
mod sharing;
mod subscriptions;
mod webhooks;
