//! Routes: the registration mode (public) and instance administration, `/admin/*`
//! (`rest-extras.md` §2, §3).
//!
//! Who is an instance admin is the user row's `is_admin`, read from the database on
//! every request (the [`Principal`] extractor reads the row). Changes that could leave
//! the instance without an enabled admin are checked in the store's write transaction
//! that makes them (X17), and disabling or deleting an account ends its logins and
//! closes its gateway sessions at once (X18).

use std::path::{Path as FsPath, PathBuf};

use axum::{extract::State, http::StatusCode};
use concord_protocol::{
    AdminListQuery, AdminServerPage, AdminStats, AdminUser, AdminUserPage, ErrorBody,
    InstanceSettings, RegistrationMode, RegistrationModeBody, ServerId, Timestamp, UpdateAdminUser,
    UpdateInstanceSettings, UserId,
};
use concord_store::{
    AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, AdminUserSort,
    InstanceSettingsRecord,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Principal,
    bus::Cached,
    config,
    directory::DirectoryChange,
    error::{ApiError, ApiResult},
    extract::{Json, Path, Query},
    state::AppState,
};

/// Highest page number a list accepts (larger ones are clamped).
const MAX_PAGE: i64 = 1_000_000;
/// Default page size.
const DEFAULT_PER_PAGE: i64 = 50;
/// Largest page size.
const MAX_PER_PAGE: i64 = 100;
/// Directory levels [`tree_size`] descends.
const MAX_TREE_DEPTH: usize = 8;

/// The registration-mode and `/admin/*` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(registration_mode))
        .routes(routes!(stats))
        .routes(routes!(counters))
        .routes(routes!(list_users))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(list_servers))
        .routes(routes!(delete_server))
        .routes(routes!(get_settings, update_settings))
}

/// The registration mode in force: the one an admin chose, else the configured one.
///
/// # Errors
/// 500 when the database fails.
pub async fn effective_registration_mode(state: &AppState) -> ApiResult<RegistrationMode> {
    let settings = state.store.instance_settings().await?;
    Ok(settings
        .registration_mode
        .unwrap_or_else(|| configured_mode(state.config.registration)))
}

fn configured_mode(mode: config::RegistrationMode) -> RegistrationMode {
    match mode {
        config::RegistrationMode::Open => RegistrationMode::Open,
        config::RegistrationMode::InviteOnly => RegistrationMode::InviteOnly,
        config::RegistrationMode::Closed => RegistrationMode::Closed,
    }
}

/// Refuses callers that are not instance admins.
///
/// # Errors
/// 403 `Admin access required`.
pub fn require_admin(principal: &Principal) -> ApiResult<()> {
    if principal.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("Admin access required"))
    }
}

fn settings_view(state: &AppState, record: InstanceSettingsRecord) -> InstanceSettings {
    InstanceSettings {
        id: 1,
        registration_mode: record
            .registration_mode
            .unwrap_or_else(|| configured_mode(state.config.registration)),
        updated_at: record.updated_at,
        updated_by: record.updated_by,
    }
}

fn refusal_error(refusal: AdminRefusal) -> ApiError {
    match refusal {
        AdminRefusal::NotFound => ApiError::not_found("User not found"),
        // The caller was demoted or disabled by another admin since the request began.
        AdminRefusal::ActorNotAdmin => ApiError::forbidden("Admin access required"),
        AdminRefusal::LastAdmin => ApiError::bad_request("Cannot remove the last active admin"),
        AdminRefusal::OwnsServers => ApiError::bad_request(
            "Cannot delete a user who owns servers. Transfer ownership first.",
        ),
    }
}

#[utoipa::path(
    get,
    path = "/instance/registration-mode",
    tag = "admin",
    description = "Who may register: `open`, `invite_only` (an invite code is needed) or \
                   `closed`. The mode an admin set in `PATCH /admin/settings`, else the \
                   configured `registration`.",
    responses(
        (status = 200, description = "The mode in force.", body = RegistrationModeBody),
        (status = 500, description = "The database failed.", body = ErrorBody),
    ),
)]
async fn registration_mode(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<RegistrationModeBody>> {
    Ok(axum::Json(RegistrationModeBody {
        registration_mode: effective_registration_mode(&state).await?,
    }))
}

#[utoipa::path(
    get,
    path = "/admin/stats",
    tag = "admin",
    description = "Instance totals for the admin dashboard. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The totals.", body = AdminStats),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
    ),
)]
async fn stats(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<axum::Json<AdminStats>> {
    require_admin(&principal)?;
    let started = std::time::Instant::now();
    state.store.ping().await?;
    let db_latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let counts = state.store.admin_counts().await?;
    let storage_bytes = upload_bytes(&state).await;
    Ok(axum::Json(AdminStats {
        total_users: counts.users,
        total_servers: counts.servers,
        total_messages: counts.messages,
        total_channels: counts.channels,
        active_ws_connections: i64::try_from(state.hub.session_count()).unwrap_or(i64::MAX),
        uptime_secs: Some(i64::try_from(state.started.elapsed().as_secs()).unwrap_or(i64::MAX)),
        db_latency_ms,
        storage_bytes,
    }))
}

/// This node's live counters, for the admin page (`GET /admin/counters`). The totals
/// only ever grow; a client derives rates from two readings.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct AdminCounters {
    /// Open WebSocket connections on this node, identified or not yet.
    connections: i64,
    /// Gateway sessions on this node (v1, and v2 served by a socket).
    sessions: i64,
    /// Protocol v2 sessions on this node waiting for a RESUME.
    sessions_detached: i64,
    /// Events published by this node since it started.
    events_published: i64,
    /// Frames queued on this node's sessions since it started (one event to 100
    /// sessions counts 100).
    deliveries: i64,
    /// Frames not queued because their session was already closing.
    outbox_dropped: i64,
    /// Sessions closed because their outbound queue overflowed (slow consumers).
    slow_consumer_closes: i64,
    /// Seconds since this node started.
    uptime_secs: i64,
}

#[utoipa::path(
    get,
    path = "/admin/counters",
    tag = "admin",
    description = "This node's live counters, read from the same registry as `GET /metrics` \
                   (which stays closed to browsers): connections, sessions, events, \
                   deliveries and queue drops since start. Cheap enough to poll every few \
                   seconds. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The counters.", body = AdminCounters),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
    ),
)]
async fn counters(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<axum::Json<AdminCounters>> {
    require_admin(&principal)?;
    let totals = state.metrics.totals();
    let wide = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(axum::Json(AdminCounters {
        connections: wide(totals.sockets.unwrap_or(0)),
        sessions: count(
            totals
                .sessions_v1
                .saturating_add(totals.sessions_v2_attached),
        ),
        sessions_detached: count(totals.sessions_v2_detached),
        events_published: wide(totals.published),
        deliveries: wide(totals.deliveries),
        outbox_dropped: wide(totals.outbox_dropped),
        slow_consumer_closes: wide(totals.slow_consumer_closes),
        uptime_secs: wide(state.started.elapsed().as_secs()),
    }))
}

/// Bytes of the uploaded files under the data directory: every file there but the
/// database's own and the JWT secret.
async fn upload_bytes(state: &AppState) -> i64 {
    let dir = state.config.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let mut total = 0_u64;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            // Top-level files are the database, its journal and the secret; uploads
            // live in subdirectories (`emojis/`, …).
            if kind.is_dir() {
                total = total.saturating_add(tree_size(&entry.path(), MAX_TREE_DEPTH));
            }
        }
        i64::try_from(total).unwrap_or(i64::MAX)
    })
    .await
    .unwrap_or(0)
}

/// Total size of the regular files under `dir`, `depth` levels down at most; links
/// are not followed.
fn tree_size(dir: &FsPath, depth: usize) -> u64 {
    let mut total = 0_u64;
    let mut pending: Vec<(PathBuf, usize)> = vec![(dir.to_path_buf(), depth)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_file() {
                total = total.saturating_add(meta.len());
            } else if meta.is_dir() && depth > 0 {
                pending.push((entry.path(), depth - 1));
            }
        }
    }
    total
}

/// (page, per_page, offset) of a list query, clamped.
fn paging(query: &AdminListQuery) -> (i64, i64, i64) {
    let page = query.page.unwrap_or(1).clamp(1, MAX_PAGE);
    let per_page = query
        .per_page
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    (page, per_page, (page - 1) * per_page)
}

/// The search, folded as the store compares (ASCII lowercase).
fn folded_search(query: &AdminListQuery) -> Option<String> {
    query.search.as_deref().map(str::to_ascii_lowercase)
}

#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    description = "One page of the instance's users. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    params(AdminListQuery),
    responses(
        (status = 200, description = "The page and the number of matches.", body = AdminUserPage),
        (status = 400, description = "`page` or `per_page` is not an integer.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
    ),
)]
async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<AdminListQuery>,
) -> ApiResult<axum::Json<AdminUserPage>> {
    require_admin(&principal)?;
    let (page, per_page, offset) = paging(&query);
    let sort = match query.sort_by.as_deref() {
        Some("username") => AdminUserSort::Username,
        Some("message_count") => AdminUserSort::MessageCount,
        _ => AdminUserSort::CreatedAt,
    };
    let (users, total) = state
        .store
        .admin_users(&AdminUserQuery {
            offset,
            limit: per_page,
            search: folded_search(&query),
            sort,
        })
        .await?;
    Ok(axum::Json(AdminUserPage {
        users,
        total,
        page,
        per_page,
    }))
}

#[utoipa::path(
    patch,
    path = "/admin/users/{user_id}",
    tag = "admin",
    description = "Grants or takes the instance admin flag, disables or enables an account. \
                   Disabling ends every login of the user and closes their gateway sessions \
                   at once (1008 in v1, 4009 in v2); every token of theirs is refused from \
                   then on. The last enabled admin cannot be demoted or disabled, also when \
                   two requests race. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("user_id" = UserId, Path, description = "The user.")),
    request_body = UpdateAdminUser,
    responses(
        (status = 200, description = "Changed; the user as it is now.", body = AdminUser),
        (status = 400, description = "Self-demotion, self-disabling, or the change would \
                                      leave no enabled admin.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 422, description = "A field of the wrong type, or an unknown field.", body = ErrorBody),
    ),
)]
async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<UserId>,
    Json(body): Json<UpdateAdminUser>,
) -> ApiResult<axum::Json<AdminUser>> {
    require_admin(&principal)?;
    if user_id == principal.id() {
        if body.is_admin == Some(false) {
            return Err(ApiError::bad_request("Cannot demote yourself from admin"));
        }
        if body.disabled == Some(true) {
            return Err(ApiError::bad_request("Cannot disable yourself"));
        }
    }
    let flags = AdminFlags {
        is_admin: body.is_admin,
        disabled: body.disabled,
    };
    state
        .store
        .set_admin_flags(principal.id(), user_id, &flags, Timestamp::now())
        .await?
        .map_err(refusal_error)?;
    if flags.disabled == Some(true) {
        // The store ended the logins; their sockets close now, on every node.
        tracing::info!(user = %user_id, by = %principal.id(), "account disabled");
        state.events.close_sessions(user_id);
    }
    let user = state
        .store
        .admin_user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    Ok(axum::Json(user))
}

#[utoipa::path(
    delete,
    path = "/admin/users/{user_id}",
    tag = "admin",
    description = "Deletes an account. Their messages and DMs stay without an author; \
                   memberships, sessions, reset tokens, bots and custom emojis they made \
                   go with them, and their gateway sessions close at once. Instance admins \
                   only.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("user_id" = UserId, Path, description = "The user.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "The caller themself, a server owner, or the last \
                                      enabled admin.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
    ),
)]
async fn delete_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<UserId>,
) -> ApiResult<StatusCode> {
    require_admin(&principal)?;
    if user_id == principal.id() {
        return Err(ApiError::bad_request("Cannot delete yourself"));
    }
    let deleted = state
        .store
        .delete_user_as_admin(principal.id(), user_id)
        .await?
        .map_err(refusal_error)?;
    tracing::info!(user = %user_id, by = %principal.id(), "account deleted");
    state.events.close_sessions(user_id);
    for server in deleted.servers {
        state.events.change(DirectoryChange::MemberRemoved {
            server,
            user: user_id,
        });
    }
    super::emojis::delete_files(&state, &deleted.emojis).await;
    // Their webhooks went by cascade: no more deliveries to them.
    state.events.forget(Cached::AllWebhooks);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/admin/servers",
    tag = "admin",
    description = "One page of the instance's servers, newest first. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    params(AdminListQuery),
    responses(
        (status = 200, description = "The page and the number of matches.", body = AdminServerPage),
        (status = 400, description = "`page` or `per_page` is not an integer.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
    ),
)]
async fn list_servers(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<AdminListQuery>,
) -> ApiResult<axum::Json<AdminServerPage>> {
    require_admin(&principal)?;
    let (page, per_page, offset) = paging(&query);
    let (servers, total) = state
        .store
        .admin_servers(&AdminServerQuery {
            offset,
            limit: per_page,
            search: folded_search(&query),
        })
        .await?;
    Ok(axum::Json(AdminServerPage {
        servers,
        total,
        page,
        per_page,
    }))
}

#[utoipa::path(
    delete,
    path = "/admin/servers/{server_id}",
    tag = "admin",
    description = "Deletes a server as its owner would. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("server_id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
        (status = 404, description = "No such server.", body = ErrorBody),
    ),
)]
async fn delete_server(
    State(state): State<AppState>,
    principal: Principal,
    Path(server_id): Path<ServerId>,
) -> ApiResult<StatusCode> {
    require_admin(&principal)?;
    if !super::servers::delete_and_announce(&state, server_id, None).await? {
        return Err(ApiError::not_found("Server not found"));
    }
    tracing::info!(server = %server_id, by = %principal.id(), "server deleted by an admin");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/admin/settings",
    tag = "admin",
    description = "The instance settings. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The settings.", body = InstanceSettings),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
    ),
)]
async fn get_settings(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<axum::Json<InstanceSettings>> {
    require_admin(&principal)?;
    let record = state.store.instance_settings().await?;
    Ok(axum::Json(settings_view(&state, record)))
}

#[utoipa::path(
    patch,
    path = "/admin/settings",
    tag = "admin",
    description = "Changes the instance settings (`updated_at` and `updated_by` are set \
                   even for `{}`). The registration mode set here overrides the configured \
                   `registration` from then on. Instance admins only.",
    security(("bearer" = []), ("bot_token" = [])),
    request_body = UpdateInstanceSettings,
    responses(
        (status = 200, description = "The settings as they are now.", body = InstanceSettings),
        (status = 400, description = "Unknown registration mode.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
        (status = 422, description = "A field of the wrong type, or an unknown field.", body = ErrorBody),
    ),
)]
async fn update_settings(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<UpdateInstanceSettings>,
) -> ApiResult<axum::Json<InstanceSettings>> {
    require_admin(&principal)?;
    let mode = match body.registration_mode.as_deref() {
        None => None,
        Some(name) => Some(RegistrationMode::parse(name).ok_or_else(|| {
            ApiError::bad_request("registration_mode must be one of: open, invite_only, closed")
        })?),
    };
    let record = state
        .store
        .update_instance_settings(mode, principal.id(), Timestamp::now())
        .await?;
    if let Some(mode) = mode {
        tracing::info!(mode = mode.as_str(), by = %principal.id(), "registration mode changed");
    }
    Ok(axum::Json(settings_view(&state, record)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(page: Option<i64>, per_page: Option<i64>) -> AdminListQuery {
        AdminListQuery {
            page,
            per_page,
            ..AdminListQuery::default()
        }
    }

    #[test]
    fn paging_is_clamped() {
        assert_eq!(paging(&query(None, None)), (1, 50, 0));
        assert_eq!(paging(&query(Some(0), Some(0))), (1, 1, 0));
        assert_eq!(paging(&query(Some(-5), Some(1000))), (1, 100, 0));
        assert_eq!(paging(&query(Some(3), Some(20))), (3, 20, 40));
        assert_eq!(
            paging(&query(Some(i64::MAX), Some(100))),
            (MAX_PAGE, 100, (MAX_PAGE - 1) * 100)
        );
    }
}
