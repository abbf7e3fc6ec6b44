//! Routes: direct messages (`rest.md` §7.11) and DM read state (§7.5).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    DirectMessage, DirectMessageId, DmChannel, DmChannelId, ErrorBody, Event, MessageQuery, OpenDm,
    SendDm, Timestamp,
};
use concord_store::{DmChannelRecord, UserRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path, Query},
    routes::messages::check_content,
    state::AppState,
    views,
};

/// The DM routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, open))
        .routes(routes!(messages, send))
        .routes(routes!(ack))
}

/// The channel as `recipient`'s counterpart sees it.
fn view(
    state: &AppState,
    record: &DmChannelRecord,
    recipient: &UserRecord,
    last_message_at: Option<Timestamp>,
) -> DmChannel {
    DmChannel {
        id: record.id,
        recipient: views::recipient_user(state, recipient),
        created_at: record.created_at,
        last_message_at,
    }
}

#[utoipa::path(
    get,
    path = "/dm-channels",
    tag = "dms",
    description = "The caller's DM channels, each with the other participant as recipient.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The DM channels.", body = Vec<DmChannel>),
    ),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<axum::Json<Vec<DmChannel>>> {
    let summaries = state.store.dm_channels_of_user(principal.id()).await?;
    let channels = summaries
        .iter()
        .map(|s| view(&state, &s.channel, &s.recipient, s.last_message_at))
        .collect();
    Ok(axum::Json(channels))
}

#[utoipa::path(
    post,
    path = "/dm-channels",
    tag = "dms",
    description = "Opens the DM channel with a user, or returns the one already open.",
    security(("bearer" = []), ("bot_token" = [])),
    request_body = OpenDm,
    responses(
        (status = 200, description = "The channel was already open.", body = DmChannel),
        (status = 201, description = "Opened; both participants are told.", body = DmChannel),
        (status = 400, description = "The caller named themselves.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
    ),
)]
async fn open(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<OpenDm>,
) -> ApiResult<Response> {
    let me = &principal.user;
    if body.user_id == me.id {
        return Err(ApiError::bad_request("You cannot open a DM with yourself"));
    }
    let target = state
        .store
        .user(body.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    let proposed = DmChannelRecord {
        id: DmChannelId::new(),
        user_a: me.id,
        user_b: target.id,
        created_at: Timestamp::now(),
    };
    let (record, created) = state.store.open_dm_channel(&proposed).await?;
    if created {
        // Each side is told about the channel with the other side as its recipient.
        let for_me = view(&state, &record, &target, None);
        let for_them = view(&state, &record, me, None);
        state.events.dispatch(
            Audience::Users(vec![me.id]),
            Event::DmChannelCreate,
            &for_me,
        );
        state.events.dispatch(
            Audience::Users(vec![target.id]),
            Event::DmChannelCreate,
            &for_them,
        );
        return Ok((StatusCode::CREATED, axum::Json(for_me)).into_response());
    }
    // The newest live message is the channel's last activity.
    let newest = state.store.dm_messages(record.id, None, 1).await?;
    let last_message_at = newest.first().map(|m| m.created_at);
    Ok((
        StatusCode::OK,
        axum::Json(view(&state, &record, &target, last_message_at)),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/dm-channels/{id}/messages",
    tag = "dms",
    description = "A page of a DM channel's messages, newest first.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = DmChannelId, Path, description = "The DM channel."),
        MessageQuery,
    ),
    responses(
        (status = 200, description = "The page.", body = Vec<DirectMessage>),
        (status = 404, description = "No such DM channel, or the caller does not take part in it.", body = ErrorBody),
    ),
)]
async fn messages(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<DmChannelId>,
    Query(query): Query<MessageQuery>,
) -> ApiResult<axum::Json<Vec<DirectMessage>>> {
    access::dm_participant(&state, id, principal.id()).await?;
    let found = state
        .store
        .dm_messages(id, query.before, query.clamped_limit())
        .await?;
    Ok(axum::Json(found))
}

#[utoipa::path(
    post,
    path = "/dm-channels/{id}/messages",
    tag = "dms",
    description = "Sends a direct message; both participants are told.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = DmChannelId, Path, description = "The DM channel.")),
    request_body = SendDm,
    responses(
        (status = 201, description = "The new message.", body = DirectMessage),
        (status = 400, description = "The content is not 1-4000 characters.", body = ErrorBody),
        (status = 404, description = "No such DM channel, or the caller does not take part in it.", body = ErrorBody),
    ),
)]
async fn send(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<DmChannelId>,
    Json(body): Json<SendDm>,
) -> ApiResult<Response> {
    check_content(&body.content)?;
    let record = access::dm_participant(&state, id, principal.id()).await?;
    let message = DirectMessage {
        id: DirectMessageId::new(),
        channel_id: record.id,
        author_id: Some(principal.id()),
        content: body.content,
        edited_at: None,
        created_at: Timestamp::now(),
    };
    state
        .store
        .create_dm_message(&message, state.events.node())
        .await?;
    state.events.dispatch(
        Audience::Users(vec![record.user_a, record.user_b]),
        Event::DmMessageCreate,
        &message,
    );
    Ok((StatusCode::CREATED, axum::Json(message)).into_response())
}

#[utoipa::path(
    post,
    path = "/dm-channels/{id}/ack",
    tag = "dms",
    description = "Marks the DM channel read up to now for the caller.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = DmChannelId, Path, description = "The DM channel.")),
    responses(
        (status = 204, description = "Marked read."),
        (status = 404, description = "No such DM channel, or the caller does not take part in it.", body = ErrorBody),
    ),
)]
async fn ack(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<DmChannelId>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    access::dm_participant(&state, id, user).await?;
    state
        .store
        .ack_dm(user, id, Timestamp::now())
        .await
        .map_err(|err| match err {
            concord_store::StoreError::NotFound => ApiError::not_found("DM channel not found"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
