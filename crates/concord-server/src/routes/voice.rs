//! Routes: voice state of voice channels (`rest.md` §7.17). Media is peer to peer; the
//! server only keeps who is where and relays signals (gateway).
//!
//! A user is in at most one voice channel across all servers. Every change goes to the
//! members who may VIEW the voice channel concerned; a leave goes to the audience of
//! the channel left.

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use concord_protocol::{
    ChannelId, Event, Timestamp, UpdateVoice, UserId, VoiceParticipant, VoiceState,
};

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
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/channels/{channel_id}/voice",
        get(participants).post(join).patch(update).delete(leave),
    )
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
        announce(&state, old, VoiceState::left(user), username);
    }
    announce(&state, channel, joined.clone(), username);
    Ok((StatusCode::CREATED, axum::Json(joined)).into_response())
}

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
