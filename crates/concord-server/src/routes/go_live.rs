//! Routes: Go Live, one screen-sharing broadcaster per voice channel (`rest.md`
//! §7.18).
//!
//! Sessions live in the store, so they survive a restart and every node sees them.
//! Concord ends a session, with `GO_LIVE_STOP`, whenever its broadcaster leaves the
//! channel by any means (`gateway.md` D18): every path that takes a user out of a
//! voice channel calls [`end_stale`] after its own write.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    ChannelId, ErrorBody, Event, GoLiveInfo, GoLiveQuality, GoLiveSession, GoLiveStop, StartGoLive,
    Timestamp, UserId,
};
use concord_store::GoLiveStart;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    state::AppState,
};

/// The Go Live routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_go_live, start_go_live, stop_go_live))
}

fn nobody_live() -> ApiError {
    ApiError::not_found("No active Go Live session in this channel")
}

/// Tells the channel's viewers that `info`'s session ended.
fn announce_stop(state: &AppState, channel: ChannelId, broadcaster: UserId) {
    let stop = GoLiveStop {
        channel_id: channel,
        broadcaster_id: broadcaster,
    };
    state
        .events
        .dispatch(Audience::Channel(channel), Event::GoLiveStop, &stop);
}

/// Ends the Go Live sessions of `user` in channels they are no longer in, each with
/// `GO_LIVE_STOP` to that channel's viewers. Called after every write that takes a
/// user out of a voice channel (leave, move, disconnect, kick, ban); a failure is
/// logged, as the voice change it follows has already happened.
pub async fn end_stale(state: &AppState, user: UserId) {
    match state.store.end_stale_go_live(user).await {
        Ok(ended) => {
            for info in ended {
                announce_stop(state, info.channel_id, info.session.broadcaster_id);
            }
        }
        Err(err) => tracing::error!(%user, error = %err, "Go Live cleanup failed"),
    }
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/go-live",
    tag = "voice",
    description = "Who is live in a voice channel.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The voice channel.")),
    responses(
        (status = 200, description = "The live session.", body = GoLiveInfo),
        (status = 400, description = "Not a voice channel.", body = ErrorBody),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or nobody is live there.", body = ErrorBody),
    ),
)]
async fn get_go_live(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<axum::Json<GoLiveInfo>> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::voice_channel(facts)?;
    // Concord (R2): who is streaming in a channel is channel content.
    access::require_channel_permission(&state, channel, user, Permissions::VIEW_CHANNEL)?;
    let info = state
        .store
        .go_live(channel)
        .await?
        .ok_or_else(nobody_live)?;
    Ok(axum::Json(info))
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/go-live",
    tag = "voice",
    description = "Goes live in the voice channel the caller is in. Going live again \
                   replaces the quality and restarts the session.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The voice channel.")),
    request_body = StartGoLive,
    responses(
        (status = 201, description = "Live.", body = GoLiveSession),
        (status = 400, description = "Not a voice channel, the caller is not in it, the \
                                      quality is not 480p, 720p or 1080p, or someone else \
                                      is live there.", body = ErrorBody),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its \
                                      server.", body = ErrorBody),
    ),
)]
async fn start_go_live(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
    Json(body): Json<StartGoLive>,
) -> ApiResult<Response> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::voice_channel(facts)?;
    let in_channel = state
        .store
        .voice_state(user)
        .await?
        .is_some_and(|v| v.channel_id == Some(channel));
    if !in_channel {
        return Err(not_in_channel());
    }
    let quality = match body.quality.as_deref() {
        None => GoLiveQuality::default(),
        Some(text) => GoLiveQuality::parse(text)
            .ok_or_else(|| ApiError::bad_request("quality must be one of: 480p, 720p, 1080p"))?,
    };
    // Concord: whoever broadcasts must still be allowed to see the channel.
    access::require_channel_permission(&state, channel, user, Permissions::VIEW_CHANNEL)?;
    let info = GoLiveInfo {
        channel_id: channel,
        session: GoLiveSession {
            broadcaster_id: user,
            quality,
            started_at: Timestamp::now(),
        },
    };
    // The store checks presence and the one-broadcaster rule again, atomically with
    // the write: a leave or another start may have come in since.
    match state.store.start_go_live(&info).await? {
        GoLiveStart::Started => {}
        GoLiveStart::NotInChannel => return Err(not_in_channel()),
        GoLiveStart::Taken(_) => {
            return Err(ApiError::bad_request(
                "Another user is already live in this channel",
            ));
        }
    }
    state
        .events
        .dispatch(Audience::Channel(channel), Event::GoLiveStart, &info);
    Ok((StatusCode::CREATED, axum::Json(info.session)).into_response())
}

fn not_in_channel() -> ApiError {
    ApiError::bad_request("You must be in the voice channel to go live")
}

#[utoipa::path(
    delete,
    path = "/channels/{channel_id}/go-live",
    tag = "voice",
    description = "Ends the caller's Go Live session (only the broadcaster may).",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The voice channel.")),
    responses(
        (status = 204, description = "Ended."),
        (status = 400, description = "Not a voice channel.", body = ErrorBody),
        (status = 403, description = "Someone else is the broadcaster.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or nobody is live there.", body = ErrorBody),
    ),
)]
async fn stop_go_live(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::voice_channel(facts)?;
    let live = state
        .store
        .go_live(channel)
        .await?
        .ok_or_else(nobody_live)?;
    if live.session.broadcaster_id != user {
        return Err(ApiError::forbidden(
            "Only the broadcaster can end the Go Live session",
        ));
    }
    // A concurrent stop (or the broadcaster leaving) may have ended it since.
    if !state.store.stop_go_live(channel, user).await? {
        return Err(nobody_live());
    }
    announce_stop(&state, channel, user);
    Ok(StatusCode::NO_CONTENT)
}
