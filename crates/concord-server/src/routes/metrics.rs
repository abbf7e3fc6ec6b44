//! `GET /metrics`: the node's metrics in the Prometheus text format, for the
//! configured addresses or the metrics token only.

use axum::{Router, extract::State, response::Response, routing::get};

use crate::{error::ApiError, state::AppState};

/// The metrics route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(_state): State<AppState>) -> Result<Response, ApiError> {
    Err(ApiError::new(
        axum::http::StatusCode::NOT_IMPLEMENTED,
        "Not implemented yet",
    ))
}
