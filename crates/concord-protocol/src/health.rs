//! Health endpoints (`rest.md` §7.21).

use serde::{Deserialize, Serialize};

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// Service name.
    pub service: String,
    /// Version.
    pub version: String,
    /// Seconds since start.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub uptime_secs: Option<i64>,
    /// Database probe.
    pub database: DatabaseHealth,
    /// Live connections.
    pub connections: Connections,
}

/// Database part of [`Health`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatabaseHealth {
    /// `ok`, `unavailable` or `timeout`.
    pub status: String,
    /// Probe latency.
    pub latency_ms: i64,
}

/// Connection counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Connections {
    /// Live gateway sessions.
    pub websocket: i64,
}

/// `GET /health/ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// Ready to serve.
    pub ready: bool,
    /// Individual checks.
    pub checks: ReadinessChecks,
}

/// Checks of [`Readiness`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadinessChecks {
    /// Database check.
    pub database: Check,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Check {
    /// Passed.
    pub ok: bool,
    /// Why not (omitted when ok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub error: Option<String>,
}

/// `GET /health/live`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Liveness {
    /// Always true.
    pub alive: bool,
}
