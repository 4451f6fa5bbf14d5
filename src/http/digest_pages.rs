//! stub
use axum::response::IntoResponse;
pub async fn confirm() -> impl IntoResponse { "todo" }
pub async fn unsubscribe() -> impl IntoResponse { "todo" }
