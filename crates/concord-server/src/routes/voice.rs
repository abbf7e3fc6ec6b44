//! Routes: voice state of voice channels (`rest.md` §7.17). Media is peer to peer; the
//! server only keeps who is where and relays signals (gateway).
//!
//! A user is in at most one voice channel across all servers. Every change goes to the
//! members who may VIEW the voice channel concerned; a leave goes to the audience of
//! the channel left.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    ChannelId, ErrorBody, Event, Timestamp, UpdateVoice, UserId, VoiceParticipant, VoiceState,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::go_live;
use crate::{
    access,
    auth::Principal,
    bus::Audience,
    directory::DirectoryChange,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    state::AppState,
};

/// The voice routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(participants, join, update, leave))
}

/// Sends `VOICE_STATE_UPDATE` with `voice` to the viewers of `channel`.
fn announce(state: &AppState, channel: ChannelId, voice: VoiceState, username: &str) {
    let participant = VoiceParticipant {
        state: voice,
        username: username.to_string(),
    };
    state.events.dispatch(
        Audience::Channel(channel),
        Event::VoiceStateUpdate,
        &participant,
    );
}

/// The caller's voice state, which must be in `channel`.
async fn state_in(state: &AppState, user: UserId, channel: ChannelId) -> ApiResult<VoiceState> {
    state
        .store
        .voice_state(user)
        .await?
        .filter(|v| v.channel_id == Some(channel))
        .ok_or_else(|| ApiError::not_found("You are not in this voice channel"))
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/voice",
    tag = "voice",
    description = "Who is in a voice channel.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The voice channel.")),
    responses(
        (status = 200, description = "The participants.", body = Vec<VoiceParticipant>),
        (status = 400, description = "Not a voice channel.", body = ErrorBody),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its server.", body = ErrorBody),
    ),
)]
async fn participants(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<axum::Json<Vec<VoiceParticipant>>> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::voice_channel(facts)?;
    // Concord (R2): who is talking in a channel is channel content.
    access::require_channel_permission(&state, channel, user, Permissions::VIEW_CHANNEL)?;
    Ok(axum::Json(state.store.voice_participants(channel).await?))
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/voice",
    tag = "voice",
    description = "Joins a voice channel, leaving any other one; the self flags reset.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The voice channel.")),
    responses(
        (status = 201, description = "The caller's new voice state.", body = VoiceState),
        (status = 400, description = "Not a voice channel.", body = ErrorBody),
        (status = 403, description = "The caller may not view or connect to the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its server.", body = ErrorBody),
    ),
)]
async fn join(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<Response> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::voice_channel(facts)?;
    // Concord also wants VIEW: joining a channel one cannot see makes no sense.
    access::require_channel_permission(
        &state,
        channel,
        user,
        Permissions::VIEW_CHANNEL.union(Permissions::CONNECT_VOICE),
    )?;
    let previous = state.store.voice_state(user).await?;
    // Join, move and re-join all reset the self flags; the server flags stay.
    let joined = VoiceState {
        channel_id: Some(channel),
        server_mute: previous.as_ref().is_some_and(|p| p.server_mute),
        server_deaf: previous.as_ref().is_some_and(|p| p.server_deaf),
        joined_at: Some(Timestamp::now()),
        ..VoiceState::left(user)
    };
    state.store.put_voice_state(&joined).await?;
    state
        .events
        .change(DirectoryChange::VoiceJoined { user, channel });
    let username = &principal.user.username;
    // The leave goes first: a member who sees both channels must end with the user in
    // the new one, not "left".
    if let Some(old) = previous
        .and_then(|p| p.channel_id)
        .filter(|old| *old != channel)
    {
        // A move ends a Go Live session in the channel left.
        go_live::end_stale(&state, user).await;
        announce(&state, old, VoiceState::left(user), username);
    }
    announce(&state, channel, joined.clone(), username);
    Ok((StatusCode::CREATED, axum::Json(joined)).into_response())
}

#[utoipa::path(
    patch,
    path = "/channels/{channel_id}/voice",
    tag = "voice",
    description = "Changes the caller's self flags in the voice channel they are in.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The voice channel.")),
    request_body = UpdateVoice,
    responses(
        (status = 200, description = "The caller's voice state.", body = VoiceState),
        (status = 400, description = "No flag given, or not a voice channel.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or is not in this voice channel.", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
    Json(body): Json<UpdateVoice>,
) -> ApiResult<axum::Json<VoiceState>> {
    if body.self_mute.is_none()
        && body.self_deaf.is_none()
        && body.self_video.is_none()
        && body.self_screen.is_none()
    {
        return Err(ApiError::bad_request(
            "Give at least one of self_mute, self_deaf, self_video, self_screen",
        ));
    }
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::voice_channel(facts)?;
    let mut voice = state_in(&state, user, channel).await?;
    voice.self_mute = body.self_mute.unwrap_or(voice.self_mute);
    voice.self_deaf = body.self_deaf.unwrap_or(voice.self_deaf);
    voice.self_video = body.self_video.unwrap_or(voice.self_video);
    voice.self_screen = body.self_screen.unwrap_or(voice.self_screen);
    state.store.put_voice_state(&voice).await?;
    announce(&state, channel, voice.clone(), &principal.user.username);
    Ok(axum::Json(voice))
}

#[utoipa::path(
    delete,
    path = "/channels/{channel_id}/voice",
    tag = "voice",
    description = "Leaves the voice channel.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The voice channel.")),
    responses(
        (status = 204, description = "Left."),
        (status = 400, description = "Not a voice channel.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or is not in this voice channel.", body = ErrorBody),
    ),
)]
async fn leave(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::voice_channel(facts)?;
    state_in(&state, user, channel).await?;
    let removed = state.store.delete_voice_state(user).await?;
    state.events.change(DirectoryChange::VoiceLeft { user });
    go_live::end_stale(&state, user).await;
    // Announce the channel actually left, should a concurrent move have won the race.
    let left = removed.and_then(|v| v.channel_id).unwrap_or(channel);
    announce(
        &state,
        left,
        VoiceState::left(user),
        &principal.user.username,
    );
    Ok(StatusCode::NO_CONTENT)
}
