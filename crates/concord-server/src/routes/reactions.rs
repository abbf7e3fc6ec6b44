//! Routes: reactions to server-channel messages (`rest.md` §7.8).
//!
//! The emoji is the percent-decoded path segment, 1–64 bytes, otherwise opaque.
//! Concord sends REACTION_ADD only when a reaction was added (D14), requires
//! VIEW_CHANNEL besides ADD_REACTIONS to react and VIEW_CHANNEL to read or take a
//! reaction back (R2), and refuses reactions from timed-out members.

use axum::{extract::State, http::StatusCode};
use concord_protocol::{
    ChannelId, ErrorBody, Event, MessageId, ReactionCount, ReactionEvent, Timestamp,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::Path,
    perms::Permissions,
    routes::threads::live_message_in,
    state::AppState,
};

/// Longest emoji, in bytes of UTF-8.
const MAX_EMOJI_BYTES: usize = 64;

/// The reaction routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_reaction, remove_reaction))
        .routes(routes!(list_reactions))
}

/// An emoji is 1–64 bytes.
fn check_emoji(emoji: &str) -> ApiResult<()> {
    if (1..=MAX_EMOJI_BYTES).contains(&emoji.len()) {
        Ok(())
    } else {
        Err(ApiError::bad_request("Emoji must be 1-64 bytes"))
    }
}

#[utoipa::path(
    put,
    path = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
    tag = "messages",
    description = "Reacts to a message with an emoji; reacting again changes nothing.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The message, of that channel."),
        ("emoji" = String, Path, description = "The emoji, percent-encoded: 1-64 bytes of \
                                                UTF-8 once decoded."),
    ),
    responses(
        (status = 204, description = "The caller has reacted with this emoji."),
        (status = 400, description = "The emoji is not 1-64 bytes.", body = ErrorBody),
        (status = 403, description = "The caller may not view the channel or add reactions \
                                      there, or is timed out in the server.", body = ErrorBody),
        (status = 404, description = "No such channel or live message there, or the caller \
                                      is not a member of the channel's server.", body = ErrorBody),
    ),
)]
async fn add_reaction(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, message, emoji)): Path<(ChannelId, MessageId, String)>,
) -> ApiResult<StatusCode> {
    check_emoji(&emoji)?;
    let user = principal.id();
    let now = Timestamp::now();
    let facts = access::member_channel(&state, channel, user)?;
    access::require_channel_permission(
        &state,
        channel,
        user,
        Permissions::VIEW_CHANNEL.union(Permissions::ADD_REACTIONS),
    )?;
    access::not_timed_out(&state, facts.server, user, now)?;
    live_message_in(&state, channel, message).await?;
    if state.store.add_reaction(message, user, &emoji, now).await? {
        let event = ReactionEvent {
            message_id: message,
            channel_id: channel,
            user_id: user,
            emoji,
        };
        state
            .events
            .dispatch(Audience::Channel(channel), Event::ReactionAdd, &event);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
    tag = "messages",
    description = "Takes back the caller's own reaction.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The message, of that channel."),
        ("emoji" = String, Path, description = "The emoji, percent-encoded: 1-64 bytes of \
                                                UTF-8 once decoded."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "The emoji is not 1-64 bytes.", body = ErrorBody),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, live message there, or reaction of \
                                      the caller, or the caller is not a member of the \
                                      channel's server.", body = ErrorBody),
    ),
)]
async fn remove_reaction(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, message, emoji)): Path<(ChannelId, MessageId, String)>,
) -> ApiResult<StatusCode> {
    check_emoji(&emoji)?;
    let user = principal.id();
    access::channel_viewer(&state, channel, user)?;
    live_message_in(&state, channel, message).await?;
    if !state.store.remove_reaction(message, user, &emoji).await? {
        return Err(ApiError::not_found("Reaction not found"));
    }
    let event = ReactionEvent {
        message_id: message,
        channel_id: channel,
        user_id: user,
        emoji,
    };
    state
        .events
        .dispatch(Audience::Channel(channel), Event::ReactionRemove, &event);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/messages/{message_id}/reactions",
    tag = "messages",
    description = "A message's reactions per emoji, in the order each emoji was first \
                   used; `me` tells whether the caller is among them.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The message, of that channel."),
    ),
    responses(
        (status = 200, description = "The reactions.", body = Vec<ReactionCount>),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel or live message there, or the caller \
                                      is not a member of the channel's server.", body = ErrorBody),
    ),
)]
async fn list_reactions(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, message)): Path<(ChannelId, MessageId)>,
) -> ApiResult<axum::Json<Vec<ReactionCount>>> {
    let user = principal.id();
    access::channel_viewer(&state, channel, user)?;
    live_message_in(&state, channel, message).await?;
    Ok(axum::Json(state.store.reactions(message, user).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_length_is_counted_in_bytes() {
        assert!(check_emoji("👍").is_ok());
        assert!(check_emoji(&"a".repeat(64)).is_ok());
        assert!(check_emoji(&"a".repeat(65)).is_err());
        // 16 four-byte emoji are 64 bytes; one more is too long.
        assert!(check_emoji(&"😀".repeat(16)).is_ok());
        assert!(check_emoji(&"😀".repeat(17)).is_err());
        assert!(check_emoji("").is_err());
    }
}
