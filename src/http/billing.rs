//! `POST /billing/stripe`: Stripe's webhook endpoint. The signature is checked before
//! anything else, with no database work, so forged requests are refused cheaply (400); a
//! verified event is applied once (200, also for retries, replays and events that change
//! nothing); only a failure on our side answers 500, so that Stripe retries it.
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::AppState;
use crate::domain::billing::{signature, stripe};

/// The largest event body accepted (Stripe's events are a few KiB; bounded so a forged
/// request costs at most one HMAC over this much).
pub const MAX_BODY: usize = 256 * 1024;

fn count(outcome: &'static str) {
    metrics::counter!("kfactor_billing_events_total", "provider" => "stripe", "outcome" => outcome)
        .increment(1);
}

fn refuse(status: StatusCode, outcome: &'static str, error: String) -> Response {
    count(outcome);
    (status, Json(json!({ "error": error }))).into_response()
}

/// Verifies and applies one Stripe event.
pub async fn stripe(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &app.svc.config.stripe_webhook_secret else {
        return refuse(
            StatusCode::NOT_FOUND,
            "disabled",
            "Stripe billing is not configured (KFACTOR_STRIPE_WEBHOOK_SECRET).".into(),
        );
    };
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = signature::verify(&secret.0, header, &body, app.svc.now()) {
        tracing::debug!(reason = %e, "refused a Stripe event");
        return refuse(StatusCode::BAD_REQUEST, "bad_signature", e.to_string());
    }
    let event = match stripe::parse_event(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "a signed Stripe event is not readable");
            return refuse(
                StatusCode::BAD_REQUEST,
                "unreadable",
                format!("unreadable event: {e}"),
            );
        }
    };
    match stripe::apply(&app.svc, &event).await {
        Ok(outcome) => {
            count(outcome.as_str());
            tracing::info!(event = %event.id, event_type = %event.kind, outcome = outcome.as_str(), "Stripe event");
            Json(json!({ "received": true, "outcome": outcome.as_str() })).into_response()
        }
        Err(e) => {
            tracing::error!(error = ?e, event = %event.id, "applying a Stripe event failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed",
                "internal error; retry later".into(),
            )
        }
    }
}
