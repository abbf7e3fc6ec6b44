//! The server audit log (`rest-extras.md` §5.2): `GET /servers/{id}/audit-logs`, and
//! the records the audited routes hand to the store.
//!
//! Concord writes each row in the transaction of the action it records (X19): the
//! routes build an [`AuditRecord`] with [`record`] and pass it to the store method that
//! performs the action, which inserts it only when the action takes effect. Update
//! rows carry the fields as the request sent them (null: unchanged), as the
//! reference's do.

use axum::extract::State;
use concord_protocol::{AuditLogEntry, AuditLogQuery, ErrorBody, ServerId, Timestamp, UserId};
use concord_store::{AuditLogFilter, AuditRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Principal,
    error::{ApiError, ApiResult},
    extract::{Path, Query},
    state::AppState,
};

/// Rows per page when `limit` is absent.
const DEFAULT_LIMIT: i64 = 50;
/// Most rows per page.
const MAX_LIMIT: i64 = 100;

/// The audit-log route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_logs))
}

/// A row recording that `actor` did `action` in `server` to the `target_type`
/// `target_id`, now.
pub(crate) fn record(
    server: ServerId,
    actor: UserId,
    action: &str,
    target_type: &str,
    target_id: uuid::Uuid,
    details: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::now_v7(),
        server_id: Some(server),
        actor_id: Some(actor),
        action: action.to_owned(),
        target_type: Some(target_type.to_owned()),
        target_id: Some(target_id),
        details: details.to_string(),
        created_at: Timestamp::now(),
    }
}

fn entry(record: AuditRecord) -> AuditLogEntry {
    // Written from a `serde_json::Value`, so it parses; a hand-edited row that does
    // not shows as an empty object rather than failing the page.
    let details = serde_json::from_str(&record.details)
        .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new()));
    AuditLogEntry {
        id: record.id,
        server_id: record.server_id,
        actor_id: record.actor_id,
        action: record.action,
        target_type: record.target_type,
        target_id: record.target_id,
        details,
        ip_address: None,
        created_at: record.created_at,
    }
}

#[utoipa::path(
    get,
    path = "/servers/{id}/audit-logs",
    tag = "servers",
    description = "The server's audit log, newest first (owner only). Page with the last \
                   row's `created_at` as `before` and its `id` as `before_id`.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server."), AuditLogQuery),
    responses(
        (status = 200, description = "The rows, newest first.", body = Vec<AuditLogEntry>),
        (status = 400, description = "A query parameter does not parse.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is a member but not the owner.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn audit_logs(
    State(state): State<AppState>,
    Query(query): Query<AuditLogQuery>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<AuditLogEntry>>> {
    owner_only(
        &state,
        server,
        principal.id(),
        "Only the server owner can view audit logs",
    )?;
    let filter = AuditLogFilter {
        action: query.action,
        actor_id: query.actor_id,
        target_type: query.target_type,
        before: query.before,
        before_id: query.before.and(query.before_id),
        limit: query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let rows = state.store.audit_logs(server, &filter).await?;
    Ok(axum::Json(rows.into_iter().map(entry).collect()))
}

/// The owner-only check of the audit log and automod: 404 for a missing server and
/// for non-members (X11), `refusal` (403) for members other than the owner.
///
/// # Errors
/// As above.
pub(crate) fn owner_only(
    state: &AppState,
    server: ServerId,
    user: UserId,
    refusal: &'static str,
) -> ApiResult<()> {
    let Some(owner) = state.directory.owner(server) else {
        return Err(crate::access::server_not_found());
    };
    if owner == user {
        return Ok(());
    }
    if !state.directory.is_member(server, user) {
        return Err(crate::access::server_not_found());
    }
    Err(ApiError::forbidden(refusal))
}
