//! A Stripe subscription as the latest applied event described it, and the organization it
//! pays for (None until `checkout.session.completed` or metadata named it).
use crate::ids::OrgId;
use sea_orm::entity::prelude::*;

/// Stripe's subscription status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SubscriptionStatus {
    /// Waiting for the first payment to succeed.
    #[sea_orm(string_value = "incomplete")]
    Incomplete,
    /// The first payment never succeeded.
    #[sea_orm(string_value = "incomplete_expired")]
    IncompleteExpired,
    /// In a trial.
    #[sea_orm(string_value = "trialing")]
    Trialing,
    /// Paid.
    #[sea_orm(string_value = "active")]
    Active,
    /// A renewal payment failed; Stripe is retrying.
    #[sea_orm(string_value = "past_due")]
    PastDue,
    /// Ended (terminal).
    #[sea_orm(string_value = "canceled")]
    Canceled,
    /// Retries are exhausted and the invoice stays open.
    #[sea_orm(string_value = "unpaid")]
    Unpaid,
    /// A trial ended without a payment method.
    #[sea_orm(string_value = "paused")]
    Paused,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stripe_subscriptions")]
pub struct Model {
    /// Stripe's id, `sub_…`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Stripe's customer id, `cus_…`.
    pub customer_id: String,
    pub organization_id: Option<OrgId>,
    /// None until a `customer.subscription.*` event was applied.
    pub status: Option<SubscriptionStatus>,
    /// JSON array of the price ids of the subscription's items.
    pub price_ids: Json,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTimeUtc>,
    /// `created` of the subscription event the row reflects (older events are ignored).
    pub event_created: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
