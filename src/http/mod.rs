//! The HTTP surface: routes, middleware, health and metrics. Thin: everything of substance
//! happens in `crate::graphql` and `crate::domain`.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, Any, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{domain::Services, graphql::KfSchema};

mod account_pages;
mod billing;
pub mod browser;
mod charts;
pub mod client;
mod cookies;
mod dashboard;
mod dashboard_benchmarks;
mod dashboard_view;
mod digest_pages;
mod graphiql;
mod graphql;
mod login;
mod notification_pages;
mod pages;
mod persisted;
pub mod prometheus;
mod signup;
mod upgrade;
pub mod ws;

pub use persisted::PersistedQueries;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Domain services.
    pub svc: Arc<Services>,
    /// The GraphQL schema.
    pub schema: KfSchema,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Open WebSocket connections.
    pub sockets: ws::Sockets,
    /// Automatic Persisted Queries.
    pub persisted: Arc<PersistedQueries>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the router with its middleware.
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.svc.config.cors_origins);
    // WebSocket connections live long; everything else gets a deadline.
    // The pages: each gets the browser's CSRF cookie (see `browser`).
    let pages = Router::new()
        .route("/invite/{token}", get(pages::invitation))
        .route(
            "/invite/{token}/accept",
            axum::routing::post(pages::accept_invitation),
        )
        .route(
            "/verify-email/{token}",
            get(account_pages::verify_email_form).post(account_pages::verify_email),
        )
        .route(
            "/reset-password/{token}",
            get(account_pages::reset_password_form).post(account_pages::reset_password),
        )
        .route("/s/{token}", get(pages::shared))
        .route(
            "/s/{token}/comments",
            axum::routing::post(pages::shared_comment),
        )
        .route(
            "/signup",
            get(signup::signup_form).post(signup::signup_submit),
        )
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard.csv", get(dashboard::csv))
        .route(
            "/digest/unsubscribe/{token}",
            get(digest_pages::confirm).post(digest_pages::unsubscribe),
        )
        .route(
            "/notifications/unsubscribe/{token}",
            get(notification_pages::confirm).post(notification_pages::unsubscribe),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            browser::csrf_cookie,
        ));
    // With an address of its own, /metrics is not on the public one.
    let metrics = match state.svc.config.operations.metrics_bind {
        None => prometheus::routes(),
        Some(_) => Router::new(),
    };
    let http = Router::new()
        .merge(pages)
        .merge(metrics)
        // A redirect with no form: no CSRF cookie.
        .route("/r/{code}", get(pages::referral))
        .route("/upgrade", get(upgrade::page_for))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/assets/{file}", get(graphiql::asset))
        .route(
            "/billing/stripe",
            axum::routing::post(billing::stripe).layer(DefaultBodyLimit::max(billing::MAX_BODY)),
        )
        .route("/healthz", get(health))
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ));
    Router::new()
        .merge(http)
        .route("/graphql/ws", get(ws::handler))
        .layer(middleware::from_fn_with_state(state.clone(), client::identify))
        .layer(middleware::from_fn(record_http))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors)
                .layer(CompressionLayer::new())
                .layer(DefaultBodyLimit::max(1024 * 1024)),
        )
        .with_state(state)
}

/// `/metrics` alone, for `KFACTOR_METRICS_BIND`.
pub fn metrics_router(state: AppState) -> Router {
    prometheus::routes().with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("idempotency-key"),
        ])
        // A browser client needs Retry-After to honour a 429.
        .expose_headers([REQUEST_ID, header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600));
    if origins.iter().any(|o| o == "*") {
        base.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        base.allow_origin(AllowOrigin::list(list))
    }
}

async fn record_http(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("kfactor_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("kfactor_http_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
async fn health(State(app): State<AppState>) -> Response {
    if app.svc.db.ping().await {
        Json(json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "database unavailable" })),
        )
            .into_response()
    }
}
