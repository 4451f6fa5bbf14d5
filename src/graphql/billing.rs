//! `Organization.billing`: plan, period and the billing provider's subscription.
use async_graphql::{Context, Enum, Object};
use chrono::{DateTime, Utc};

use super::{
    error::top_level,
    plans::{BillingPeriod, Plan},
    svc,
};
use crate::domain::records::{self, SubscriptionStatus as DStatus};
use crate::domain::{access::OrgView, billing};

/// The state of a provider subscription (Stripe's statuses).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DStatus")]
pub enum SubscriptionStatus {
    /// Waiting for the first payment.
    Incomplete,
    /// The first payment never succeeded.
    IncompleteExpired,
    /// In a trial.
    Trialing,
    /// Paid.
    Active,
    /// A renewal payment failed and is being retried; the plan stays.
    PastDue,
    /// Ended.
    Canceled,
    /// Retries are exhausted.
    Unpaid,
    /// A trial ended without a payment method.
    Paused,
}

/// An organization's billing.
pub struct Billing(billing::Billing);

/// Loads the billing of an organization as the caller sees it (the domain decides who may).
pub async fn of(ctx: &Context<'_>, view: &OrgView) -> async_graphql::Result<Billing> {
    let svc = svc(ctx);
    billing::billing_of(&svc.db.read, svc, view)
        .await
        .map(Billing)
        .map_err(top_level)
}

/// An organization's billing: its plan and period, and the billing provider's subscription
/// paying for it, if one is attached.
#[Object]
impl Billing {
    /// The plan the organization is on.
    async fn plan(&self) -> Plan {
        Plan(self.0.plan.clone())
    }

    /// The current period of periodic limits.
    async fn period(&self) -> BillingPeriod {
        BillingPeriod {
            start: self.0.period.0,
            end: self.0.period.1,
        }
    }

    /// Whether a billing-provider subscription is attached (one that has not ended).
    async fn has_subscription(&self) -> bool {
        self.0.subscription.is_some()
    }

    /// The attached subscription, if any.
    async fn subscription(&self) -> Option<ProviderSubscription> {
        self.0.subscription.clone().map(ProviderSubscription)
    }
}

/// A subscription at the billing provider, as its latest event described it.
pub struct ProviderSubscription(records::ProviderSubscription);

/// A subscription at the billing provider, as its latest event described it.
#[Object]
impl ProviderSubscription {
    /// The provider: "stripe".
    async fn provider(&self) -> &str {
        "stripe"
    }

    /// The provider's subscription id (`sub_…`).
    async fn id(&self) -> &str {
        &self.0.id
    }

    /// The provider's customer id (`cus_…`).
    async fn customer_id(&self) -> &str {
        &self.0.customer_id
    }

    /// Its state.
    async fn status(&self) -> SubscriptionStatus {
        // Only subscriptions whose state arrived are attached.
        self.0.status.unwrap_or(DStatus::Incomplete).into()
    }

    /// Set to end at the period's end: the plan stays until then.
    async fn cancel_at_period_end(&self) -> bool {
        self.0.cancel_at_period_end
    }

    /// When the paid period ends (renewal or, if canceling, the end).
    async fn current_period_end(&self) -> Option<DateTime<Utc>> {
        self.0.current_period_end
    }
}
