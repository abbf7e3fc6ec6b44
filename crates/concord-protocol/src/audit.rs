//! The server audit log (`rest-extras.md` §5.2).

use serde::{Deserialize, Serialize};

use crate::{ServerId, Timestamp, UserId};

/// One audit-log row: who did what to what, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogEntry {
    /// Id.
    pub id: uuid::Uuid,
    /// The server (null once it is deleted).
    pub server_id: Option<ServerId>,
    /// Who acted (null once that account is deleted).
    pub actor_id: Option<UserId>,
    /// What was done: `member_ban`, `role_update`, `channel_create`, …
    pub action: String,
    /// What kind of thing was acted on: `server`, `channel`, `user`, `role`, `invite`.
    pub target_type: Option<String>,
    /// The id of what was acted on.
    pub target_id: Option<uuid::Uuid>,
    /// The action's details (a JSON object; its keys depend on `action`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
    /// Always null (Concord records no addresses).
    pub ip_address: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// `?action=&actor_id=&target_type=&before=&before_id=&limit=` of
/// `GET /servers/{id}/audit-logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditLogQuery {
    /// Only rows of this action.
    #[serde(default)]
    pub action: Option<String>,
    /// Only rows of this actor.
    #[serde(default)]
    pub actor_id: Option<UserId>,
    /// Only rows of this target type.
    #[serde(default)]
    pub target_type: Option<String>,
    /// Only rows strictly older than this time (the last row's `created_at`, to page).
    #[serde(default)]
    pub before: Option<Timestamp>,
    /// With `before`: the last row's `id`, to page on (`created_at`, `id`) so that
    /// rows sharing a time are neither skipped nor repeated (a Concord addition).
    #[serde(default)]
    pub before_id: Option<uuid::Uuid>,
    /// Page size: default 50, clamped to 1..100.
    #[serde(default)]
    pub limit: Option<i64>,
}
