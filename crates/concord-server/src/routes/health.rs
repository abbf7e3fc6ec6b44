//! `GET /health`, `/health/live`, `/health/ready` (`rest.md` §7.21).

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use concord_protocol::{
    Check, Connections, DatabaseHealth, Health, Liveness, Readiness, ReadinessChecks,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// The health routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
}

enum Probe {
    Ok(i64),
    Failed(String),
    Timeout,
}

async fn probe(state: &AppState) -> Probe {
    let started = std::time::Instant::now();
    match tokio::time::timeout(Duration::from_secs(5), state.store.ping()).await {
        Ok(Ok(())) => Probe::Ok(started.elapsed().as_millis() as i64),
        Ok(Err(err)) => Probe::Failed(format!("database_error: {err}")),
        Err(_) => Probe::Timeout,
    }
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    description = "Service status with a database probe (at most 5 s) and the number of \
                   live gateway sessions.",
    responses(
        (status = 200, description = "Healthy.", body = Health),
        (status = 503, description = "The database probe failed or timed out (`status` is \
                                      `degraded`).", body = Health),
    ),
)]
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let (code, status, db_status, latency) = match probe(&state).await {
        Probe::Ok(ms) => (StatusCode::OK, "ok", "ok", ms),
        Probe::Failed(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded",
            "unavailable",
            0,
        ),
        Probe::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "degraded", "timeout", 5000),
    };
    let body = Health {
        status: status.into(),
        service: "concord".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: Some(state.started.elapsed().as_secs() as i64),
        database: DatabaseHealth {
            status: db_status.into(),
            latency_ms: latency,
        },
        connections: Connections {
            websocket: state.hub.session_count() as i64,
        },
    };
    (code, Json(body))
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    description = "Liveness: the process answers.",
    responses(
        (status = 200, description = "Alive.", body = Liveness),
    ),
)]
async fn live() -> Json<Liveness> {
    Json(Liveness { alive: true })
}

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    description = "Readiness: the database answers a probe (at most 5 s).",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready; `checks.database.error` says why.", body = Readiness),
    ),
)]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let check = match probe(&state).await {
        Probe::Ok(_) => Check {
            ok: true,
            error: None,
        },
        Probe::Failed(error) => Check {
            ok: false,
            error: Some(error),
        },
        Probe::Timeout => Check {
            ok: false,
            error: Some("timeout".into()),
        },
    };
    let code = if check.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Readiness {
            ready: check.ok,
            checks: ReadinessChecks { database: check },
        }),
    )
}
