//! Webhook endpoints, deliveries and their operator tools.
use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    auth,
    connection::{connection, page_request},
    error::{payload, top_level, UserError},
    svc,
};
use crate::domain::records;
use crate::domain::{
    ids::{OrgId, WebhookDeliveryId, WebhookEndpointId},
    webhooks::{self as rules, DeliveryStatus as DStatus},
    DomainError,
};

/// The state of a delivery.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DStatus")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Retries are exhausted, or the endpoint answered 410 Gone.
    Failed,
}

/// An HTTPS endpoint of a third-party system. Deliveries follow the Standard Webhooks spec.
#[derive(Clone)]
pub struct WebhookEndpoint(pub records::WebhookEndpoint);

#[Object]
impl WebhookEndpoint {
    /// Opaque id (`whe_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// A note for humans.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The event types it receives; empty = all event types.
    async fn event_types(&self) -> async_graphql::Result<Vec<String>> {
        rules::event_types(&self.0).map_err(super::error::top_level)
    }
    /// Whether deliveries are sent.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Why it was disabled, e.g. after failing for 5 days.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Its deliveries, newest first, optionally only those with `status`.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        status: Option<DeliveryStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<WebhookDeliveryConnection> {
        let req = page_request(ctx, first, after)?;
        let page = rules::deliveries(&svc(ctx).db.read, self.0.id, status.map(Into::into), req)
            .await
            .map_err(top_level)?;
        Ok(WebhookDeliveryConnection::from_page(
            page,
            |d| d.delivery.id,
            WebhookDelivery,
        ))
    }
}

/// One message to one endpoint, with its attempts.
#[derive(Clone)]
pub struct WebhookDelivery(pub rules::Delivery);

#[Object]
impl WebhookDelivery {
    /// Opaque id (`whd_…`).
    async fn id(&self) -> ID {
        ID(self.0.delivery.id.to_string())
    }
    /// The `webhook-id` header; the same on every retry.
    async fn message_id(&self) -> String {
        rules::message_id(self.0.message.id)
    }
    /// e.g. `referral.signup`.
    async fn event_type(&self) -> &str {
        &self.0.message.event_type
    }
    /// The envelope `{"type","timestamp","data"}` that is signed and sent.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.message.payload.clone())
    }
    /// Where it stands.
    async fn status(&self) -> DeliveryStatus {
        self.0.delivery.status.into()
    }
    /// Every attempt, oldest first.
    async fn attempts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookAttempt>> {
        let rows = rules::attempts_of(&svc(ctx).db.read, self.0.delivery.id)
            .await
            .map_err(top_level)?;
        Ok(rows.into_iter().map(WebhookAttempt).collect())
    }
    /// When the next attempt is due (pending deliveries only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.delivery.status == DStatus::Pending)
            .then_some(self.0.delivery.next_attempt_at)
            .flatten()
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.delivery.created_at
    }
}

/// One HTTP attempt of a delivery.
#[derive(Clone)]
pub struct WebhookAttempt(pub records::WebhookAttempt);

#[Object]
impl WebhookAttempt {
    /// When it was made.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// The HTTP status answered, if any.
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }
    /// How long it took.
    async fn duration_ms(&self) -> i32 {
        self.0.duration_ms
    }
    /// What went wrong (a non-2xx status, a timeout, a refused address…).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// The start (at most 1 KiB) of the response body.
    async fn response_body(&self) -> Option<&str> {
        self.0.response_body.as_deref()
    }
    /// Whether an operator asked for it (redeliverWebhook).
    async fn manual(&self) -> bool {
        self.0.manual
    }
}

connection!(
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDelivery,
    "webhook deliveries"
);

/// Input of `createWebhookEndpoint`.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// null: a platform endpoint receiving every organization's events (staff only).
    organization_id: Option<ID>,
    /// https URL (http only when the server allows it).
    url: String,
    /// Event types to receive; empty = all.
    #[graphql(default_with = "Some(Vec::new())")]
    event_types: Option<Vec<String>>,
    /// A note for humans.
    description: Option<String>,
}

/// Result of an endpoint mutation.
#[derive(SimpleObject, Default)]
pub struct WebhookEndpointPayload {
    /// The endpoint after the change.
    endpoint: Option<WebhookEndpoint>,
    /// `whsec_<base64>`, returned on create and rotate only: store it now.
    secret: Option<String>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

impl WebhookEndpointPayload {
    fn from(
        r: Result<(records::WebhookEndpoint, Option<String>), DomainError>,
    ) -> async_graphql::Result<Self> {
        payload(
            r,
            |(e, secret)| WebhookEndpointPayload {
                endpoint: Some(WebhookEndpoint(e)),
                secret,
                user_errors: vec![],
            },
            |user_errors| WebhookEndpointPayload {
                user_errors,
                ..Default::default()
            },
        )
    }
}

/// Result of `sendTestWebhook` and `redeliverWebhook`.
#[derive(SimpleObject, Default)]
pub struct WebhookDeliveryPayload {
    /// The delivery, pending its attempt.
    delivery: Option<WebhookDelivery>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

impl WebhookDeliveryPayload {
    fn from(r: Result<rules::Delivery, DomainError>) -> async_graphql::Result<Self> {
        payload(
            r,
            |d| WebhookDeliveryPayload {
                delivery: Some(WebhookDelivery(d)),
                user_errors: vec![],
            },
            |user_errors| WebhookDeliveryPayload {
                user_errors,
                ..Default::default()
            },
        )
    }
}

/// The webhook endpoints of an organization (ADMIN and OWNER); used by `Organization`.
pub async fn org_endpoints(
    ctx: &Context<'_>,
    org: OrgId,
) -> async_graphql::Result<Vec<WebhookEndpoint>> {
    let caller = auth(ctx).caller().map_err(top_level)?;
    let rows = rules::list_for_org(&svc(ctx).db.read, caller, org)
        .await
        .map_err(top_level)?;
    Ok(rows.into_iter().map(WebhookEndpoint).collect())
}

/// Webhook queries.
#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Platform endpoints; staff only.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let rows = rules::list_platform(&svc(ctx).db.read, caller)
            .await
            .map_err(top_level)?;
        Ok(rows.into_iter().map(WebhookEndpoint).collect())
    }
}

/// Webhook mutations.
#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an endpoint of an organization (ADMIN/OWNER) or, without `organizationId`, a
    /// platform endpoint (staff). The payload carries its secret, shown this once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let r = async {
            let org = input
                .organization_id
                .as_deref()
                .map(|o| OrgId::parse(o))
                .transpose()?;
            let types = input.event_types.unwrap_or_default();
            let (e, secret) = rules::create(
                svc(ctx),
                caller,
                rules::NewEndpoint {
                    org,
                    url: &input.url,
                    event_types: &types,
                    description: input.description.as_deref(),
                },
            )
            .await?;
            Ok((e, Some(secret)))
        }
        .await;
        WebhookEndpointPayload::from(r)
    }

    /// Changes an endpoint; omitted arguments stay as they are. Enabling clears
    /// `disabledReason` and sends what waited meanwhile.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        url: Option<String>,
        event_types: Option<Vec<String>>,
        enabled: Option<bool>,
        description: Option<String>,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let r = async {
            let id = WebhookEndpointId::parse(&id)?;
            let e = rules::update(
                svc(ctx),
                caller,
                id,
                rules::EndpointChanges {
                    url: url.as_deref(),
                    event_types: event_types.as_deref(),
                    enabled,
                    description: description.as_deref(),
                },
            )
            .await?;
            Ok((e, None))
        }
        .await;
        WebhookEndpointPayload::from(r)
    }

    /// Deletes an endpoint with its deliveries.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<super::orgs::DeletePayload> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let r =
            async { rules::delete(svc(ctx), caller, WebhookEndpointId::parse(&id)?).await }.await;
        super::orgs::DeletePayload::from(r.map(|id| id.to_string()))
    }

    /// New secret; the old one keeps signing too (a second signature) until
    /// expireOldAfterSeconds.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 86400)] expire_old_after_seconds: Option<i32>,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let r = async {
            let id = WebhookEndpointId::parse(&id)?;
            let grace = expire_old_after_seconds
                .map(i64::from)
                .unwrap_or(rules::DEFAULT_GRACE_SECONDS);
            let (e, secret) = rules::rotate_secret(svc(ctx), caller, id, grace).await?;
            Ok((e, Some(secret)))
        }
        .await;
        WebhookEndpointPayload::from(r)
    }

    /// Sends `webhook.test {endpoint_id}` to the endpoint.
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
    ) -> async_graphql::Result<WebhookDeliveryPayload> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let r = async {
            rules::send_test(svc(ctx), caller, WebhookEndpointId::parse(&endpoint_id)?).await
        }
        .await;
        WebhookDeliveryPayload::from(r)
    }

    /// Sends a delivery again now: a new manual attempt with the same `webhook-id`.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> async_graphql::Result<WebhookDeliveryPayload> {
        let caller = auth(ctx).caller().map_err(top_level)?;
        let r = async {
            rules::redeliver(svc(ctx), caller, WebhookDeliveryId::parse(&delivery_id)?).await
        }
        .await;
        WebhookDeliveryPayload::from(r)
    }
}
