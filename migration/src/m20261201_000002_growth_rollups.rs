//! Growth rollups: per (scope, UTC day) aggregates of the growth facts, written in the same
//! transaction as the facts, so a growth question over months reads a few hundred rows
//! instead of millions. `scope_id` is an organization's id, or the nil UUID for the
//! platform. Every row is by definition the raw aggregation of its day; `kfactor metrics
//! verify` recomputes them from the facts and compares.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The rollup tables, in SQL both backends accept (`day` is `YYYY-MM-DD` text).
const TABLES: &[&str] = &[
    // Additive counters of one day.
    "CREATE TABLE growth_days (
        scope_id uuid NOT NULL,
        day varchar(10) NOT NULL,
        signups_organic bigint NOT NULL DEFAULT 0,
        signups_invite bigint NOT NULL DEFAULT 0,
        signups_referral bigint NOT NULL DEFAULT 0,
        signups_share bigint NOT NULL DEFAULT 0,
        signups_paid bigint NOT NULL DEFAULT 0,
        cohort_invitations bigint NOT NULL DEFAULT 0,
        cohort_conversions bigint NOT NULL DEFAULT 0,
        cohort_shares bigint NOT NULL DEFAULT 0,
        invitations_sent bigint NOT NULL DEFAULT 0,
        invitations_opened bigint NOT NULL DEFAULT 0,
        invitations_accepted bigint NOT NULL DEFAULT 0,
        invitations_activated bigint NOT NULL DEFAULT 0,
        links_created bigint NOT NULL DEFAULT 0,
        visits bigint NOT NULL DEFAULT 0,
        share_signups bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (scope_id, day))",
    // Per surface label.
    "CREATE TABLE growth_surface_days (
        scope_id uuid NOT NULL,
        day varchar(10) NOT NULL,
        surface varchar(100) NOT NULL,
        invitations_sent bigint NOT NULL DEFAULT 0,
        links_created bigint NOT NULL DEFAULT 0,
        viral_signups bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (scope_id, day, surface))",
    // Per first sender: invitations first sent that day and how many of them were accepted.
    "CREATE TABLE growth_inviter_days (
        scope_id uuid NOT NULL,
        day varchar(10) NOT NULL,
        inviter_id uuid NOT NULL,
        sent bigint NOT NULL DEFAULT 0,
        accepted bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (scope_id, day, inviter_id))",
    // The days each visitor opened a link of the scope.
    "CREATE TABLE growth_visitor_days (
        scope_id uuid NOT NULL,
        visitor_id varchar(200) NOT NULL,
        day varchar(10) NOT NULL,
        PRIMARY KEY (scope_id, visitor_id, day))",
    // Visitors of a day by the day of their previous visit ('' for none): the visitors of a
    // run of days are those whose previous visit lies before the run.
    "CREATE TABLE growth_visitor_firsts (
        scope_id uuid NOT NULL,
        day varchar(10) NOT NULL,
        prev_day varchar(10) NOT NULL,
        visitors bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (scope_id, day, prev_day))",
    // One row per viral invite signup credited to an inviter: the median viral cycle.
    "CREATE TABLE growth_cycles (
        scope_id uuid NOT NULL,
        invitee_id uuid NOT NULL,
        inviter_id uuid NOT NULL,
        cohort_at timestamp with time zone NOT NULL,
        cycle_ms bigint NOT NULL,
        bucket integer NOT NULL,
        PRIMARY KEY (scope_id, invitee_id))",
    // How many cycles of a cohort day fall in each hour bucket.
    "CREATE TABLE growth_cycle_days (
        scope_id uuid NOT NULL,
        day varchar(10) NOT NULL,
        bucket integer NOT NULL,
        cycles bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (scope_id, day, bucket))",
    // Days whose rollups a removal made stale: read from the facts until refreshed.
    "CREATE TABLE growth_stale (
        scope_id uuid NOT NULL,
        day varchar(10) NOT NULL,
        PRIMARY KEY (scope_id, day))",
];

const INDEXES: &[&str] = &[
    "CREATE INDEX growth_cycles_cohort_idx ON growth_cycles (scope_id, cohort_at)",
    "CREATE INDEX growth_cycles_bucket_idx ON growth_cycles (scope_id, bucket, cohort_at)",
    "CREATE INDEX growth_cycles_inviter_idx ON growth_cycles (scope_id, inviter_id)",
    "CREATE INDEX growth_inviter_days_inviter_idx ON growth_inviter_days (scope_id, inviter_id, day)",
    // Joins from a member to their invitations and credited signups in one organization.
    "CREATE INDEX invitations_sender_org_idx ON invitations (first_sent_by_user_id, organization_id, created_at)",
    "CREATE INDEX invitations_accepted_by_idx ON invitations (first_accepted_by_user_id)",
    "CREATE INDEX users_inviter_org_idx ON users (invited_by_user_id, attributed_organization_id, created_at)",
    "CREATE INDEX link_visits_visitor_idx ON link_visits (visitor_id, created_at)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for sql in TABLES.iter().chain(INDEXES) {
            db.execute_unprepared(sql).await?;
        }
        // Superseded by invitations_sender_org_idx.
        db.execute_unprepared("DROP INDEX invitations_first_sender_idx")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE INDEX invitations_first_sender_idx ON invitations (first_sent_by_user_id, created_at)",
        )
        .await?;
        for name in [
            "invitations_sender_org_idx",
            "invitations_accepted_by_idx",
            "users_inviter_org_idx",
            "link_visits_visitor_idx",
        ] {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        for table in [
            "growth_stale",
            "growth_cycle_days",
            "growth_cycles",
            "growth_visitor_firsts",
            "growth_visitor_days",
            "growth_inviter_days",
            "growth_surface_days",
            "growth_days",
        ] {
            db.execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
