//! A Stripe event id already handled: retries and replays of it change nothing.
use sea_orm::entity::prelude::*;

/// What handling an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EventOutcome {
    /// Its facts were stored (and the plan changed, if it had to).
    #[sea_orm(string_value = "applied")]
    Applied,
    /// A newer event about the same subscription had been applied already.
    #[sea_orm(string_value = "stale")]
    Stale,
    /// Nothing to do: an unknown price or organization, or an object it does not concern.
    #[sea_orm(string_value = "ignored")]
    Ignored,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stripe_events")]
pub struct Model {
    /// Stripe's id, `evt_…`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_type: String,
    /// The event's `created`.
    pub created: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub outcome: EventOutcome,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
