//! GraphQL over HTTP (the GraphQL-over-HTTP spec); WebSocket is in `ws`.
//!
//! async-graphql's stock handler answers every request with 200 and `application/json`; the
//! spec wants `application/graphql-response+json`, 4xx for requests that could not start
//! executing (unparsable JSON, invalid documents), mutations refused over GET, and no
//! batching unless asked for. This module implements exactly that.
use async_graphql::{
    parser::{parse_query, types::OperationType},
    Request, Response as GqlResponse, Value,
};
use axum::{
    body::Bytes,
    extract::{Extension, Query, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{persisted, AppState};
use crate::{
    domain::{idempotency, ratelimit::Client, statements},
    graphql::{
        error::{Outcome, TopLevelCode},
        loaders, Auth,
    },
};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Which media type the client accepts for the response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    /// `application/graphql-response+json`: status codes carry meaning.
    GraphqlResponse,
    /// Legacy `application/json`: always 200 for well-formed requests.
    Json,
}

fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Media::GraphqlResponse);
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types
        .iter()
        .any(|t| *t == GRAPHQL_RESPONSE || *t == "*/*" || *t == "application/*")
    {
        Some(Media::GraphqlResponse)
    } else if types.contains(&JSON) {
        Some(Media::Json)
    } else {
        None
    }
}

/// An error response for a request that never reached execution.
fn request_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "errors": [{ "message": message.into(), "extensions": { "code": code } }] });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(GRAPHQL_RESPONSE),
        )],
        body.to_string(),
    )
        .into_response()
}

/// `POST /graphql`.
pub async fn post(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            format!("Accept {GRAPHQL_RESPONSE} or {JSON}."),
        );
    };
    // Legacy clients that accept only application/json get it for request errors too.
    let request_error = |status: StatusCode, code: &str, message: String| {
        let mut r = request_error(status, code, message);
        if media == Media::Json {
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        }
        r
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with(JSON) {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send the request as Content-Type: application/json.".into(),
        );
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("The body is not valid JSON: {e}."),
            )
        }
    };
    if value.is_array() {
        return request_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Batched requests are not supported; send one operation per request.".into(),
        );
    }
    let mut value = value;
    if let Some(pq) = value.pointer("/extensions/persistedQuery").cloned() {
        let query = value.get("query").and_then(|q| q.as_str());
        match app.persisted.resolve(&pq, query) {
            Ok(text) => value["query"] = serde_json::Value::String(text),
            Err(refused) => return persisted_refused(refused, request_error),
        }
    }
    if !value.get("query").is_some_and(|q| q.is_string()) {
        return request_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "The body must be an object with a string `query` (and optional `variables`, `operationName`).".into(),
        );
    }
    let request: Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("Malformed GraphQL request: {e}."),
            )
        }
    };
    execute(&app, &headers, request.data(client), media).await
}

/// Query parameters of `GET /graphql`.
#[derive(Deserialize)]
pub struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    /// JSON: the request's extensions (`persistedQuery`).
    extensions: Option<String>,
}

/// `GET /graphql`: GraphiQL for browsers, queries (never mutations) for everyone else.
pub async fn get(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut query = params.query.filter(|q| !q.trim().is_empty());
    if let Some(ext) = params
        .extensions
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        let pq = match serde_json::from_str::<serde_json::Value>(ext) {
            Ok(v) => v.get("persistedQuery").cloned(),
            Err(e) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    format!("`extensions` is not valid JSON: {e}."),
                )
            }
        };
        if let Some(pq) = pq {
            match app.persisted.resolve(&pq, query.as_deref()) {
                Ok(text) => query = Some(text),
                Err(refused) => return persisted_refused(refused, request_error),
            }
        }
    }
    let Some(query) = query else {
        if wants_html {
            return Html(super::graphiql::INDEX).into_response();
        }
        return request_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Missing `query` parameter.",
        );
    };
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "Not acceptable.",
        );
    };
    if let Ok(doc) = parse_query(&query) {
        let is_mutation = doc.operations.iter().any(|(name, op)| {
            op.node.ty != OperationType::Query
                && (params.operation_name.is_none()
                    || name.map(|n| n.as_str()) == params.operation_name.as_deref())
        });
        if is_mutation {
            let mut r = request_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "Only queries run over GET; send mutations and subscriptions with POST or WebSocket.",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
    }
    let mut request = Request::new(query).data(client);
    if let Some(op) = params.operation_name {
        request = request.operation_name(op);
    }
    if let Some(vars) = params.variables.filter(|v| !v.trim().is_empty()) {
        match serde_json::from_str(&vars) {
            Ok(v) => request = request.variables(async_graphql::Variables::from_json(v)),
            Err(e) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    format!("`variables` is not valid JSON: {e}."),
                )
            }
        }
    }
    execute(&app, &headers, request, media).await
}

/// The answer to a request whose persisted query could not be used; NOT_FOUND tells the
/// client to send the text with the hash (what Apollo Client and urql do on
/// `PERSISTED_QUERY_NOT_FOUND`).
fn persisted_refused(
    refused: persisted::Refused,
    request_error: impl Fn(StatusCode, &str, String) -> Response,
) -> Response {
    match refused {
        persisted::Refused::NotFound => request_error(
            StatusCode::BAD_REQUEST,
            "PERSISTED_QUERY_NOT_FOUND",
            "PersistedQueryNotFound".into(),
        ),
        persisted::Refused::Invalid(why) => {
            request_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", why.into())
        }
    }
}

/// What an `Idempotency-Key` header means for a request.
#[derive(PartialEq, Eq)]
enum KeyUse {
    /// Not a mutation (or not parsable, which execution reports): the key changes nothing.
    Ignored,
    /// A mutation made only of fields that create something: the key is honoured.
    Honoured,
    /// Another mutation: the key is refused rather than silently ignored.
    Unsupported,
}

fn key_use(request: &Request) -> KeyUse {
    let Ok(doc) = parse_query(&request.query) else {
        return KeyUse::Ignored;
    };
    let wanted = request.operation_name.as_deref();
    let Some((_, op)) = doc
        .operations
        .iter()
        .find(|(name, _)| wanted.is_none() || name.map(|n| n.as_str()) == wanted)
    else {
        return KeyUse::Ignored;
    };
    if op.node.ty != OperationType::Mutation {
        return KeyUse::Ignored;
    }
    let all_supported = op
        .node
        .selection_set
        .node
        .items
        .iter()
        .all(|s| match &s.node {
            async_graphql::parser::types::Selection::Field(f) => {
                idempotency::SUPPORTED.contains(&f.node.name.node.as_str())
            }
            _ => false,
        });
    if all_supported {
        KeyUse::Honoured
    } else {
        KeyUse::Unsupported
    }
}

/// Runs a request, counting the SQL statements it runs (authentication included) into
/// `kfactor_graphql_statements` and, when configured, a `Server-Timing` header.
async fn execute(app: &AppState, headers: &HeaderMap, request: Request, media: Media) -> Response {
    let (mut response, spent) = statements::measure(run(app, headers, request, media)).await;
    metrics::histogram!("kfactor_graphql_statements").record(f64::from(spent.statements()));
    if app.svc.config.operations.server_timing {
        let value = format!(
            "db;dur={:.3};desc=\"{} statements\"",
            spent.elapsed().as_secs_f64() * 1000.0,
            spent.statements()
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("server-timing"), v);
        }
    }
    response
}

async fn run(app: &AppState, headers: &HeaderMap, request: Request, media: Media) -> Response {
    // Per request, so a batch holds only this request's keys and its statements count here.
    let request = request.data(loaders::for_request(&app.svc, |batch| {
        tokio::spawn(statements::carry(batch));
    }));
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let auth = Auth::from_header(&app.svc, authorization).await;
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::trim).unwrap_or("\u{0}").to_string());
    // Parsing the document for the key's sake only when there is a key.
    let key_use = match key {
        Some(_) => key_use(&request),
        None => KeyUse::Ignored,
    };
    let key = match (key, key_use) {
        (Some(_), KeyUse::Unsupported) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "IDEMPOTENCY_NOT_SUPPORTED",
                format!(
                    "Idempotency-Key is honoured only by mutations that create something ({}); send this one without it.",
                    idempotency::SUPPORTED.join(", ")
                ),
            )
        }
        (Some(key), KeyUse::Honoured) => key,
        _ => {
            let response = app.schema.execute(request.data(auth)).await;
            return render(response, media);
        }
    };
    // The fingerprint is of the parsed request: formatting, commas and comments of the
    // document do not make a retry a different request.
    let hash = idempotency::fingerprint(&[
        &idempotency::normalise_document(&request.query),
        request.operation_name.as_deref().unwrap_or(""),
        &serde_json::to_string(&request.variables).unwrap_or_default(),
    ]);
    let scope = match &auth {
        Auth::User { user, .. } => user.id.to_string(),
        Auth::ApiKey(k) => k.id.to_string(),
        // Anonymous callers (signUp, guestComment) cannot be told apart: the key is
        // namespaced by the request itself, so only the same request replays (one caller
        // never receives another's response).
        _ => format!("anonymous:{hash}"),
    };
    match idempotency::begin(&app.svc, &scope, &key, &hash).await {
        Ok(idempotency::Begin::Fresh) => {
            // Run to completion even if the client goes away: the response must be stored
            // (or the claim released) whatever happens to this connection.
            let app = app.clone();
            let job = tokio::spawn(statements::carry(async move {
                let outcome = Outcome::default();
                let response = app
                    .schema
                    .execute(request.data(auth).data(outcome.clone()))
                    .await;
                // Failures on our side and rate limits are worth retrying with the same key,
                // and so is a request refused before it ran (any status but 200).
                let retryable = outcome.retryable(&response);
                let encoded = match encode(&response, media) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(error = %e, "serializing a GraphQL response failed");
                        if let Err(e) = idempotency::abort(&app.svc, &scope, &key).await {
                            tracing::error!(error = ?e, "releasing an idempotency key failed");
                        }
                        return internal_error();
                    }
                };
                let saved = if retryable || encoded.status != StatusCode::OK {
                    idempotency::abort(&app.svc, &scope, &key).await
                } else {
                    idempotency::complete(&app.svc, &scope, &key, &encoded.body).await
                };
                if let Err(e) = saved {
                    tracing::error!(error = ?e, "recording an idempotent response failed");
                }
                encoded.into_response()
            }));
            job.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "an idempotent request failed");
                internal_error()
            })
        }
        Ok(idempotency::Begin::Replay(body)) => {
            let ct = if media == Media::Json {
                JSON
            } else {
                GRAPHQL_RESPONSE
            };
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(ct)),
                    (
                        HeaderName::from_static("idempotent-replayed"),
                        HeaderValue::from_static("true"),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Ok(idempotency::Begin::InProgress) => request_error(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_IN_PROGRESS",
            "A request with this Idempotency-Key is still running; retry in a moment.",
        ),
        Ok(idempotency::Begin::Mismatch) => request_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was used for a different request.",
        ),
        Err(crate::domain::DomainError::InvalidInput { message, .. }) => {
            request_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
        }
        Err(e) => {
            tracing::error!(error = ?e, "idempotency check failed");
            internal_error()
        }
    }
}

/// A GraphQL response as it goes on the wire: what [`render`] sends and what an idempotent
/// request stores for its key.
struct Encoded {
    status: StatusCode,
    content_type: &'static str,
    body: String,
    /// `Retry-After` seconds, when a rate limit refused the whole request.
    retry_after: Option<u64>,
}

impl Encoded {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            self.body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        r
    }
}

/// The status, media type and body of an executed response.
fn encode(response: &GqlResponse, media: Media) -> Result<Encoded, serde_json::Error> {
    // A request error (parse or validation) stops before execution: no data at all and no
    // error with a path. Field errors always have a path.
    let request_failed = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let refused = refused_for(response);
    let (status, content_type) = match media {
        Media::GraphqlResponse if refused.is_some() => {
            (StatusCode::TOO_MANY_REQUESTS, GRAPHQL_RESPONSE)
        }
        Media::Json if refused.is_some() => (StatusCode::TOO_MANY_REQUESTS, JSON),
        Media::GraphqlResponse if request_failed => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE),
        Media::GraphqlResponse => (StatusCode::OK, GRAPHQL_RESPONSE),
        Media::Json => (StatusCode::OK, JSON),
    };
    // The GraphQL-over-HTTP spec: a request that fails before execution has no `data` entry
    // at all (async-graphql would write `"data": null`).
    let body = if request_failed {
        let mut value = serde_json::to_value(response)?;
        if let Some(map) = value.as_object_mut() {
            map.remove("data");
        }
        serde_json::to_string(&value)?
    } else {
        serde_json::to_string(response)?
    };
    Ok(Encoded {
        status,
        content_type,
        body,
        retry_after: refused,
    })
}

fn render(response: GqlResponse, media: Media) -> Response {
    match encode(&response, media) {
        Ok(encoded) => encoded.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "serializing a GraphQL response failed");
            internal_error()
        }
    }
}

/// 500 without detail (the cause is logged where it happened).
fn internal_error() -> Response {
    request_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "Internal error.",
    )
}

/// When a rate limit refused the whole request (every error is RATE_LIMITED and no root
/// field has data), the longest `retryAfterSeconds`: the answer is then HTTP 429 with
/// `Retry-After`, like any rate-limited HTTP API.
fn refused_for(response: &GqlResponse) -> Option<u64> {
    let nothing = match &response.data {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(|v| *v == Value::Null),
        _ => false,
    };
    if !nothing || response.errors.is_empty() {
        return None;
    }
    let mut wait = 0;
    for e in &response.errors {
        if e.source::<TopLevelCode>() != Some(&TopLevelCode::RateLimited) {
            return None;
        }
        let secs = match e.extensions.as_ref()?.get("retryAfterSeconds") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(1),
            _ => 1,
        };
        wait = wait.max(secs);
    }
    Some(wait.max(1))
}
