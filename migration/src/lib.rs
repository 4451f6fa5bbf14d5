//! Database migrations. Every migration is portable: the same definitions run on SQLite
//! (the embedded default) and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261126_000001_foundation;
mod m20261126_000002_invitations;
mod m20261126_000003_sharing;
mod m20261126_000004_webhooks;
mod m20261126_000005_plans;
mod m20261201_000001_growth;
mod m20261201_000002_growth_rollups;
mod m20261202_000001_api_keys;
mod m20261202_000002_billing;
mod m20261203_000001_accounts;
mod m20261206_000001_pages_digest;
mod m20261208_000001_notifications;
mod m20261209_000001_benchmarks;

/// Applies kfactor's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_foundation::Migration),
            Box::new(m20261126_000002_invitations::Migration),
            Box::new(m20261126_000003_sharing::Migration),
            Box::new(m20261126_000004_webhooks::Migration),
            Box::new(m20261126_000005_plans::Migration),
            Box::new(m20261201_000001_growth::Migration),
            Box::new(m20261201_000002_growth_rollups::Migration),
            Box::new(m20261202_000001_api_keys::Migration),
            Box::new(m20261202_000002_billing::Migration),
            Box::new(m20261203_000001_accounts::Migration),
            Box::new(m20261206_000001_pages_digest::Migration),
            Box::new(m20261208_000001_notifications::Migration),
            Box::new(m20261209_000001_benchmarks::Migration),
        ]
    }
}
