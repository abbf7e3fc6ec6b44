//! Routes: pinned messages (`rest.md` §7.9).
//!
//! Pinning takes the server-level MANAGE_MESSAGES bit (channel overrides play no part
//! in it); Concord also requires VIEW_CHANNEL, so that nobody pins, or probes for,
//! messages of a channel they cannot read. MESSAGE_PIN and MESSAGE_UNPIN go to the
//! channel's viewers, only when the pin changed.

use axum::{extract::State, http::StatusCode};
use concord_protocol::{
    ChannelId, ErrorBody, Event, Message, MessageId, MessagePin, MessageUnpin, Timestamp, UserId,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::Path,
    perms::Permissions,
    poll_views,
    routes::threads::live_message_in,
    state::AppState,
};

/// The pin routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pin_message, unpin_message))
        .routes(routes!(list_pinned))
}

/// The caller may manage the messages of `channel`: a member with the server-level
/// MANAGE_MESSAGES bit who may VIEW the channel.
fn message_manager(state: &AppState, channel: ChannelId, user: UserId) -> ApiResult<()> {
    let facts = access::member_channel(state, channel, user)?;
    let manages = state
        .directory
        .server_permissions(facts.server, user)
        .is_some_and(|p| p.contains(Permissions::MANAGE_MESSAGES));
    if !manages {
        return Err(ApiError::forbidden("Missing permission to manage messages"));
    }
    access::require_channel_permission(state, channel, user, Permissions::VIEW_CHANNEL)
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/messages/{message_id}/pin",
    tag = "messages",
    description = "Pins a message; pinning a pinned message changes nothing.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The message, of that channel."),
    ),
    responses(
        (status = 204, description = "The message is pinned."),
        (status = 403, description = "The caller lacks MANAGE_MESSAGES in the server or may \
                                      not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel or live message there, or the caller \
                                      is not a member of the channel's server.", body = ErrorBody),
    ),
)]
async fn pin_message(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, message)): Path<(ChannelId, MessageId)>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    message_manager(&state, channel, user)?;
    live_message_in(&state, channel, message).await?;
    if state
        .store
        .pin_message(message, user, Timestamp::now())
        .await?
    {
        let event = MessagePin {
            message_id: message,
            channel_id: channel,
            pinned_by: user,
        };
        state
            .events
            .dispatch(Audience::Channel(channel), Event::MessagePin, &event);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/channels/{channel_id}/messages/{message_id}/pin",
    tag = "messages",
    description = "Unpins a message.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The message, of that channel."),
    ),
    responses(
        (status = 204, description = "Unpinned."),
        (status = 403, description = "The caller lacks MANAGE_MESSAGES in the server or may \
                                      not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel or live message there, the caller is \
                                      not a member of the channel's server, or the message is \
                                      not pinned.", body = ErrorBody),
    ),
)]
async fn unpin_message(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, message)): Path<(ChannelId, MessageId)>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    message_manager(&state, channel, user)?;
    live_message_in(&state, channel, message).await?;
    if !state.store.unpin_message(message).await? {
        return Err(ApiError::not_found("Message is not pinned"));
    }
    let event = MessageUnpin {
        message_id: message,
        channel_id: channel,
        unpinned_by: user,
    };
    state
        .events
        .dispatch(Audience::Channel(channel), Event::MessageUnpin, &event);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/pinned-messages",
    tag = "messages",
    description = "The channel's pinned messages, most recently pinned first. Unlike the \
                   reference, each carries its live thread reply count, poll (with the \
                   caller's vote) and scheduled event.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The channel.")),
    responses(
        (status = 200, description = "The pinned messages.", body = Vec<Message>),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its \
                                      server.", body = ErrorBody),
    ),
)]
async fn list_pinned(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<axum::Json<Vec<Message>>> {
    let user = principal.id();
    access::channel_viewer(&state, channel, user)?;
    let mut messages = state.store.pinned_messages(channel).await?;
    poll_views::fill_user_votes(&state, user, &mut messages).await?;
    Ok(axum::Json(messages))
}
