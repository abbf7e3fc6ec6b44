//! `GET /health`, `/health/live`, `/health/ready` (`rest.md` §7.21).

use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use concord_protocol::{
    Check, Connections, DatabaseHealth, Health, Liveness, Readiness, ReadinessChecks,
};

use crate::state::AppState;

/// The health routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
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

async fn live() -> Json<Liveness> {
    Json(Liveness { alive: true })
}

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
