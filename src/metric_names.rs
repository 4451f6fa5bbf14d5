//! Every Prometheus metric kfactor exports, in one list: registered at start (at zero), so a
//! dashboard or alert on a metric works before its first event, and checked by a test
//! against the names the code records and the README documents.

/// How a metric is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution (Prometheus summary).
    Histogram,
}

/// `(name, kind, help)` of every metric.
pub const ALL: &[(&str, Kind, &str)] = &[
    (
        "kfactor_http_requests_total",
        Kind::Counter,
        "HTTP requests by route, method and status.",
    ),
    (
        "kfactor_http_request_duration_seconds",
        Kind::Histogram,
        "HTTP request duration by route.",
    ),
    (
        "kfactor_graphql_operations_total",
        Kind::Counter,
        "GraphQL operations by type, root fields and outcome.",
    ),
    (
        "kfactor_graphql_operation_duration_seconds",
        Kind::Histogram,
        "GraphQL operation duration by type and root fields.",
    ),
    (
        "kfactor_graphql_statements",
        Kind::Histogram,
        "SQL statements run by each GraphQL request over HTTP, authentication included.",
    ),
    (
        "kfactor_rate_limited_total",
        Kind::Counter,
        "Requests refused by a rate limit, by limit.",
    ),
    (
        "kfactor_emails_total",
        Kind::Counter,
        "Emails by kind and outcome.",
    ),
    (
        "kfactor_billing_events_total",
        Kind::Counter,
        "Billing provider events by type and outcome.",
    ),
    (
        "kfactor_retention_pruned_total",
        Kind::Counter,
        "Rows the retention task deleted, by kind.",
    ),
    (
        "kfactor_link_cache_bytes",
        Kind::Gauge,
        "Bytes the SQLite link cache holds.",
    ),
    (
        "kfactor_visit_batch_size",
        Kind::Histogram,
        "Share-link visits written per group commit.",
    ),
    (
        "kfactor_visit_batch_seconds",
        Kind::Histogram,
        "Duration of one group commit of visits.",
    ),
    (
        "kfactor_webhook_deliveries_created_total",
        Kind::Counter,
        "Webhook deliveries created (one per message and subscribed endpoint).",
    ),
    (
        "kfactor_webhook_attempts_total",
        Kind::Counter,
        "Webhook delivery attempts by outcome.",
    ),
    (
        "kfactor_webhook_deliveries_total",
        Kind::Counter,
        "Webhook deliveries finished, by final status.",
    ),
    (
        "kfactor_webhook_attempt_duration_seconds",
        Kind::Histogram,
        "Duration of one webhook attempt.",
    ),
    (
        "kfactor_webhook_delivery_latency_seconds",
        Kind::Histogram,
        "From the event to its successful delivery.",
    ),
    (
        "kfactor_presence_viewers",
        Kind::Gauge,
        "Presence viewers this instance holds (its own and the other instances' it heard of).",
    ),
    (
        "kfactor_presence_frames_total",
        Kind::Counter,
        "Presence frames sent to subscribers.",
    ),
    (
        "kfactor_webhook_queue_depth",
        Kind::Gauge,
        "Webhook deliveries due or in flight.",
    ),
    (
        "kfactor_webhook_endpoints_disabled_total",
        Kind::Counter,
        "Webhook endpoints disabled after failing for days.",
    ),
    (
        "kfactor_webhook_record_batch_size",
        Kind::Histogram,
        "Webhook attempts recorded per group commit.",
    ),
    (
        "kfactor_webhook_record_batch_seconds",
        Kind::Histogram,
        "Duration of one group commit of webhook attempts.",
    ),
];

/// Describes every metric and creates its unlabelled series at zero (adding nothing to a
/// series that exists: several apps may share the process-wide recorder, as tests do).
pub fn register_all() {
    for &(name, kind, help) in ALL {
        match kind {
            Kind::Counter => {
                metrics::describe_counter!(name, help);
                metrics::counter!(name).increment(0);
            }
            Kind::Gauge => {
                metrics::describe_gauge!(name, help);
                metrics::gauge!(name).increment(0.0);
            }
            Kind::Histogram => {
                metrics::describe_histogram!(name, help);
                // A handle registers the series; it shows with a count of 0.
                let _ = metrics::histogram!(name);
            }
        }
    }
}
