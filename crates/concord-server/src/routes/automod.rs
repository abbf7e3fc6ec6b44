//! Routes: a server's automod settings, filtered words and log (`rest-extras.md` §6.1),
//! all for the owner alone (ADMINISTRATOR does not suffice); non-members get 404
//! (X11). What the settings do to posted messages is in [`crate::automod`]; every
//! change here drops the server's rules from its cache.

use axum::{extract::State, http::StatusCode};
use concord_protocol::{
    AUTOMOD_MAX_WORD_CHARS, AUTOMOD_MAX_WORDS, AUTOMOD_SPAM_MAX_MESSAGES, AUTOMOD_SPAM_WINDOW_SECS,
    AUTOMOD_TIMEOUT_MINUTES, AddWordFilter, AutomodAction, AutomodConfig, AutomodLogEntry,
    ErrorBody, ServerId, Timestamp, UpdateAutomodConfig, WordFilter,
};
use concord_store::{AutomodPatch, StoreError, WordAddition};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::audit::owner_only;
use crate::{
    access,
    auth::Principal,
    bus::Cached,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    state::AppState,
};

/// Entries `GET /servers/{id}/automod/logs` answers.
const LOG_PAGE: i64 = 100;

const MANAGE_REFUSAL: &str = "Only the server owner can manage automod";
const LOGS_REFUSAL: &str = "Only the server owner can view automod logs";

/// The automod routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(config, update_config))
        .routes(routes!(words, add_word))
        .routes(routes!(remove_word))
        .routes(routes!(logs))
}

/// An action's wire name, or the reference's 400.
fn action(name: Option<String>) -> ApiResult<Option<AutomodAction>> {
    name.map(|name| {
        AutomodAction::parse(&name)
            .ok_or_else(|| ApiError::bad_request("action must be delete, timeout, kick, or ban"))
    })
    .transpose()
}

/// `value`, unless it is outside `range` (X10: 400, not the reference's 500).
fn in_range(
    field: &str,
    value: Option<i32>,
    range: std::ops::RangeInclusive<i32>,
) -> ApiResult<Option<i32>> {
    match value {
        Some(v) if !range.contains(&v) => Err(ApiError::bad_request(format!(
            "{field} must be between {} and {}",
            range.start(),
            range.end()
        ))),
        _ => Ok(value),
    }
}

/// The store's patch of a PATCH body: the actions first, then the ranges.
fn patch_of(body: UpdateAutomodConfig) -> ApiResult<AutomodPatch> {
    let spam_action = action(body.spam_action)?;
    let word_filter_action = action(body.word_filter_action)?;
    Ok(AutomodPatch {
        enabled: body.enabled,
        spam_enabled: body.spam_enabled,
        spam_max_messages: in_range(
            "spam_max_messages",
            body.spam_max_messages,
            AUTOMOD_SPAM_MAX_MESSAGES,
        )?,
        spam_window_secs: in_range(
            "spam_window_secs",
            body.spam_window_secs,
            AUTOMOD_SPAM_WINDOW_SECS,
        )?,
        spam_action,
        duplicate_enabled: body.duplicate_enabled,
        word_filter_enabled: body.word_filter_enabled,
        word_filter_action,
        timeout_minutes: in_range(
            "timeout_minutes",
            body.timeout_minutes,
            AUTOMOD_TIMEOUT_MINUTES,
        )?,
    })
}

#[utoipa::path(
    get,
    path = "/servers/{id}/automod",
    tag = "servers",
    description = "The server's automod settings (owner only).",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The settings.", body = AutomodConfig),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is a member but not the owner.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or the \
                                      settings were never changed (`no automod config`: \
                                      automod is off, at the defaults).", body = ErrorBody),
    ),
)]
async fn config(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<AutomodConfig>> {
    owner_only(&state, server, principal.id(), MANAGE_REFUSAL)?;
    let config = state
        .store
        .automod_config(server)
        .await?
        .ok_or_else(|| ApiError::not_found("no automod config"))?;
    Ok(axum::Json(config))
}

#[utoipa::path(
    patch,
    path = "/servers/{id}/automod",
    tag = "servers",
    description = "Changes the server's automod settings (owner only): absent or null \
                   fields stay as they are; the first change fills them with the defaults.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body = UpdateAutomodConfig,
    responses(
        (status = 200, description = "The settings now.", body = AutomodConfig),
        (status = 400, description = "An action is not delete, timeout, kick or ban, or a \
                                      number is out of its range.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is a member but not the owner.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn update_config(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
    Json(body): Json<UpdateAutomodConfig>,
) -> ApiResult<axum::Json<AutomodConfig>> {
    owner_only(&state, server, principal.id(), MANAGE_REFUSAL)?;
    let patch = patch_of(body)?;
    let config = match state
        .store
        .update_automod_config(server, &patch, Timestamp::now())
        .await
    {
        Ok(config) => config,
        // Deleted since the check.
        Err(StoreError::NotFound) => return Err(access::server_not_found()),
        Err(err) => return Err(err.into()),
    };
    state.events.forget(Cached::Automod { server });
    Ok(axum::Json(config))
}

#[utoipa::path(
    get,
    path = "/servers/{id}/automod/words",
    tag = "servers",
    description = "The server's filtered words, oldest first (owner only).",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The words.", body = Vec<WordFilter>),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is a member but not the owner.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn words(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<WordFilter>>> {
    owner_only(&state, server, principal.id(), MANAGE_REFUSAL)?;
    Ok(axum::Json(state.store.automod_words(server).await?))
}

#[utoipa::path(
    post,
    path = "/servers/{id}/automod/words",
    tag = "servers",
    description = "Adds a filtered word (owner only), trimmed and lowercased; a word \
                   already on the list answers its existing row.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body = AddWordFilter,
    responses(
        (status = 201, description = "The word's row (new, or the existing one).", body = WordFilter),
        (status = 400, description = "The word is empty or longer than 100 characters, or \
                                      the server already filters 1000 words.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is a member but not the owner.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn add_word(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
    Json(body): Json<AddWordFilter>,
) -> ApiResult<(StatusCode, axum::Json<WordFilter>)> {
    owner_only(&state, server, principal.id(), MANAGE_REFUSAL)?;
    let word = body.word.trim().to_lowercase();
    if word.is_empty() {
        return Err(ApiError::bad_request("word cannot be empty"));
    }
    if word.chars().count() > AUTOMOD_MAX_WORD_CHARS {
        return Err(ApiError::bad_request(format!(
            "word must be at most {AUTOMOD_MAX_WORD_CHARS} characters"
        )));
    }
    let row = WordFilter {
        id: uuid::Uuid::now_v7(),
        server_id: server,
        word,
        created_by: Some(principal.id()),
        created_at: Timestamp::now(),
    };
    let limit = i64::try_from(AUTOMOD_MAX_WORDS).unwrap_or(i64::MAX);
    match state.store.add_automod_word(&row, limit).await {
        Ok(WordAddition::Added(row)) => {
            state.events.forget(Cached::Automod { server });
            Ok((StatusCode::CREATED, axum::Json(row)))
        }
        Ok(WordAddition::Existing(row)) => Ok((StatusCode::CREATED, axum::Json(row))),
        Ok(WordAddition::LimitReached) => Err(ApiError::bad_request(format!(
            "A server can filter at most {AUTOMOD_MAX_WORDS} words"
        ))),
        Err(StoreError::NotFound) => Err(access::server_not_found()),
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/automod/words/{word}",
    tag = "servers",
    description = "Removes a filtered word (owner only), named by its text \
                   (percent-encoded; lowercased, not trimmed). 204 whether or not it was \
                   on the list.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("word" = String, Path, description = "The word's text."),
    ),
    responses(
        (status = 204, description = "Not filtered any more."),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is a member but not the owner.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn remove_word(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, word)): Path<(ServerId, String)>,
) -> ApiResult<StatusCode> {
    owner_only(&state, server, principal.id(), MANAGE_REFUSAL)?;
    if state
        .store
        .remove_automod_word(server, &word.to_lowercase())
        .await?
    {
        state.events.forget(Cached::Automod { server });
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/servers/{id}/automod/logs",
    tag = "servers",
    description = "What automod did in the server, the 100 newest entries, newest first \
                   (owner only).",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The entries.", body = Vec<AutomodLogEntry>),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is a member but not the owner.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<AutomodLogEntry>>> {
    owner_only(&state, server, principal.id(), LOGS_REFUSAL)?;
    Ok(axum::Json(
        state.store.automod_logs(server, LOG_PAGE).await?,
    ))
}
