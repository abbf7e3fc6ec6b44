//! `GET /metrics`: the node's metrics in the Prometheus text format, for the
//! configured addresses or the metrics token only.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use concord_protocol::ErrorBody;
use sha2::{Digest, Sha256};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::ApiError, state::AppState};

/// The metrics route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    description = "The node's metrics in the Prometheus text exposition format. Served to \
                   the addresses configured under `[metrics] allow` (loopback by default), \
                   or from anywhere with `Authorization: Bearer <metrics token>` when \
                   `[metrics] token` is set.",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain", body = String),
        (status = 403, description = "Neither from a configured address nor with the metrics \
                                      token.", body = ErrorBody),
    ),
)]
async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = state.limiters.client_ip(peer.ip(), &headers);
    let by_address = state.config.metrics.allows(client);
    let by_token = state
        .config
        .metrics
        .token
        .as_deref()
        .is_some_and(|token| bearer(&headers).is_some_and(|given| same_secret(given, token)));
    if !(by_address || by_token) {
        return Err(ApiError::forbidden(
            "Metrics are served to the configured addresses or with the metrics token",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response())
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares digests, so that the time taken says nothing about the secret.
fn same_secret(given: &str, secret: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(secret.as_bytes())
}
