//! Routes: channels of a server (`rest.md` §7.4) and channel read state (§7.5).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    Channel, ChannelDelete, ChannelId, CreateChannel, ErrorBody, Event, ServerId, Timestamp,
    UpdateChannel,
};
use concord_store::{ChannelPatch, NewChannel};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    directory::DirectoryChange,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    state::AppState,
};

/// Longest channel name, in chars.
const MAX_NAME_CHARS: usize = 100;
/// Longest topic, in chars.
const MAX_TOPIC_CHARS: usize = 1024;
/// Longest category label, in chars.
const MAX_CATEGORY_CHARS: usize = 100;

/// The channels routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(ack))
}

/// The text rules shared by create and update; `None` fields are not checked.
fn check_fields(name: Option<&str>, topic: Option<&str>, category: Option<&str>) -> ApiResult<()> {
    if name.is_some_and(|n| !(1..=MAX_NAME_CHARS).contains(&n.chars().count())) {
        return Err(ApiError::bad_request(
            "Channel name must be 1-100 characters",
        ));
    }
    if topic.is_some_and(|t| t.chars().count() > MAX_TOPIC_CHARS) {
        return Err(ApiError::bad_request(
            "Topic must be at most 1024 characters",
        ));
    }
    if category.is_some_and(|c| c.chars().count() > MAX_CATEGORY_CHARS) {
        return Err(ApiError::bad_request(
            "Category must be at most 100 characters",
        ));
    }
    Ok(())
}

/// The channel belongs to `server`; a channel of another server is as good as missing.
fn channel_of(state: &AppState, server: ServerId, channel: ChannelId) -> ApiResult<()> {
    match state.directory.channel(channel) {
        Some(facts) if facts.server == server => Ok(()),
        _ => Err(access::channel_not_found()),
    }
}

#[utoipa::path(
    post,
    path = "/servers/{id}/channels",
    tag = "channels",
    description = "Creates a channel (owner only); its viewers are told.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body = CreateChannel,
    responses(
        (status = 201, description = "The new channel.", body = Channel),
        (status = 400, description = "The name is not 1-100 characters, the topic is over \
                                      1024 or the category over 100.", body = ErrorBody),
        (status = 403, description = "The caller is not the owner.", body = ErrorBody),
        (status = 404, description = "No such server.", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
    Json(body): Json<CreateChannel>,
) -> ApiResult<Response> {
    check_fields(
        Some(&body.name),
        body.topic.as_deref(),
        body.category.as_deref(),
    )?;
    access::server_owner(&state, server, principal.id())?;
    let id = ChannelId::new();
    let audit = super::audit::record(
        server,
        principal.id(),
        "channel_create",
        "channel",
        id.get(),
        serde_json::json!({ "name": body.name, "type": body.kind.as_str() }),
    );
    let channel = state
        .store
        .create_channel_audited(
            &NewChannel {
                id,
                server_id: server,
                name: body.name,
                kind: body.kind,
                topic: body.topic,
                category: body.category,
                created_at: Timestamp::now(),
            },
            &audit,
        )
        .await?;
    state.events.change(DirectoryChange::ChannelCreated {
        channel: channel.id,
        server,
        kind: channel.kind,
    });
    // After the directory knows the channel: its viewers are resolved from it.
    state.events.dispatch(
        Audience::Channel(channel.id),
        Event::ChannelCreate,
        &channel,
    );
    Ok((StatusCode::CREATED, axum::Json(channel)).into_response())
}

#[utoipa::path(
    get,
    path = "/servers/{id}/channels",
    tag = "channels",
    description = "The channels of a server that the caller may view.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The channels.", body = Vec<Channel>),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<Channel>>> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    let mut channels = state.store.channels(server).await?;
    // Concord: a channel the caller may not view is not listed, matching event fan-out.
    channels.retain(|c| access::can_view(&state, c.id, user));
    Ok(axum::Json(channels))
}

#[utoipa::path(
    get,
    path = "/servers/{id}/channels/{channel_id}",
    tag = "channels",
    description = "One channel the caller may view.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("channel_id" = ChannelId, Path, description = "The channel, of that server."),
    ),
    responses(
        (status = 200, description = "The channel.", body = Channel),
        (status = 404, description = "No such server or channel, the caller is not a member, \
                                      or may not view the channel.", body = ErrorBody),
    ),
)]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, channel)): Path<(ServerId, ChannelId)>,
) -> ApiResult<axum::Json<Channel>> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    channel_of(&state, server, channel)?;
    // Hidden channels are absent from the listing, so they are absent here too.
    if !access::can_view(&state, channel, user) {
        return Err(access::channel_not_found());
    }
    let found = state
        .store
        .channel(channel)
        .await?
        .ok_or_else(access::channel_not_found)?;
    Ok(axum::Json(found))
}

#[utoipa::path(
    patch,
    path = "/servers/{id}/channels/{channel_id}",
    tag = "channels",
    description = "Changes a channel (owner only); absent fields stay as they are.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("channel_id" = ChannelId, Path, description = "The channel, of that server."),
    ),
    request_body = UpdateChannel,
    responses(
        (status = 200, description = "The updated channel.", body = Channel),
        (status = 400, description = "The name is not 1-100 characters, the topic is over \
                                      1024, the category over 100, or the position negative.", body = ErrorBody),
        (status = 403, description = "The caller is not the owner.", body = ErrorBody),
        (status = 404, description = "No such server or channel.", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, channel)): Path<(ServerId, ChannelId)>,
    Json(body): Json<UpdateChannel>,
) -> ApiResult<axum::Json<Channel>> {
    check_fields(
        body.name.as_deref(),
        body.topic.as_deref(),
        body.category.as_deref(),
    )?;
    if body.position.is_some_and(|p| p < 0) {
        return Err(ApiError::bad_request("Position must be 0 or more"));
    }
    access::server_owner(&state, server, principal.id())?;
    channel_of(&state, server, channel)?;
    let audit = super::audit::record(
        server,
        principal.id(),
        "channel_update",
        "channel",
        channel.get(),
        serde_json::json!({
            "name": body.name,
            "topic": body.topic,
            "category": body.category,
            "position": body.position,
        }),
    );
    let patch = ChannelPatch {
        name: body.name,
        topic: body.topic,
        category: body.category,
        position: body.position,
    };
    let updated = state
        .store
        .update_channel(channel, &patch, Some(&audit))
        .await?
        .ok_or_else(access::channel_not_found)?;
    state
        .events
        .dispatch(Audience::Channel(channel), Event::ChannelUpdate, &updated);
    Ok(axum::Json(updated))
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/channels/{channel_id}",
    tag = "channels",
    description = "Deletes a channel with its messages (owner only).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("channel_id" = ChannelId, Path, description = "The channel, of that server."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is not the owner.", body = ErrorBody),
        (status = 404, description = "No such server or channel.", body = ErrorBody),
    ),
)]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, channel)): Path<(ServerId, ChannelId)>,
) -> ApiResult<StatusCode> {
    access::server_owner(&state, server, principal.id())?;
    channel_of(&state, server, channel)?;
    let name = state
        .store
        .channel(channel)
        .await?
        .map(|found| found.name)
        .ok_or_else(access::channel_not_found)?;
    let audit = super::audit::record(
        server,
        principal.id(),
        "channel_delete",
        "channel",
        channel.get(),
        serde_json::json!({ "name": name }),
    );
    if !state.store.delete_channel(channel, Some(&audit)).await? {
        return Err(access::channel_not_found());
    }
    // Messages, overrides and voice states went with the row; v1 announces nothing.
    // v2 tells those who could view it, as they were before the directory forgets it.
    let viewers = state.directory.viewers(channel).to_vec();
    state
        .events
        .change(DirectoryChange::ChannelDeleted { channel });
    state.events.dispatch(
        Audience::Users(viewers),
        Event::ChannelDelete,
        &ChannelDelete {
            id: channel,
            server_id: server,
        },
    );
    // Attachment rows went with the messages; their files go now (X4).
    crate::attachments::purge_files(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/ack",
    tag = "channels",
    description = "Marks the channel read up to now for the caller.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The channel.")),
    responses(
        (status = 204, description = "Marked read."),
        (status = 404, description = "No such channel, or the caller is not a member of its server.", body = ErrorBody),
    ),
)]
async fn ack(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    access::member_channel(&state, channel, user)?;
    state
        .store
        .ack_channel(user, channel, Timestamp::now())
        .await
        .map_err(|err| match err {
            concord_store::StoreError::NotFound => access::channel_not_found(),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
