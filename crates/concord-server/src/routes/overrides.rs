//! Routes: channel permission overrides (`rest.md` §7.13).
//!
//! Writing needs MANAGE_CHANNELS at channel level (the channel's overrides apply to the
//! actor too); reading needs VIEW_CHANNEL (Concord, R2). A change is committed, then
//! published as a permission change (the directory first, v2 visibility events with
//! it) and then as the v1 event to every member of the server.

use axum::{extract::State, http::StatusCode};
use concord_protocol::{
    ChannelId, ChannelOverride, ErrorBody, Event, OverrideDelete, OverrideId, PutOverride,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    directory::DirectoryChange,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    state::AppState,
    visibility,
};

/// The overrides routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_overrides, put_override))
        .routes(routes!(delete_override))
}

/// Override bits are 0..=32767 (`rest.md` §5.1).
fn check_bits(bits: i64, which: &str) -> ApiResult<()> {
    if (0..=Permissions::ALL.0).contains(&bits) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{which} must be between 0 and 32767"
        )))
    }
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/overrides",
    tag = "channels",
    description = "The permission overrides of a channel the caller may view: role overrides \
                   first, then user overrides.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The channel.")),
    responses(
        (status = 200, description = "The overrides.", body = Vec<ChannelOverride>),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its \
                                      server.", body = ErrorBody),
    ),
)]
async fn list_overrides(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
) -> ApiResult<axum::Json<Vec<ChannelOverride>>> {
    let user = principal.id();
    access::member_channel(&state, channel, user)?;
    // Concord (R2): who may see a channel is part of its content.
    access::require_channel_permission(&state, channel, user, Permissions::VIEW_CHANNEL)?;
    Ok(axum::Json(state.store.overrides_of_channel(channel).await?))
}

#[utoipa::path(
    put,
    path = "/channels/{channel_id}/overrides",
    tag = "channels",
    description = "Creates or replaces the channel's override for one role or one member \
                   (MANAGE_CHANNELS on this channel). Putting the bits an override already \
                   has answers it without an event.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The channel.")),
    request_body = PutOverride,
    responses(
        (status = 200, description = "The override as stored.", body = ChannelOverride),
        (status = 400, description = "Not exactly one of `role_id` and `user_id`, `allow` and \
                                      `deny` share a bit, or a value is outside 0..=32767.", body = ErrorBody),
        (status = 403, description = "The caller lacks MANAGE_CHANNELS on the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or the target is not a role or a member of that \
                                      server.", body = ErrorBody),
    ),
)]
async fn put_override(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
    Json(body): Json<PutOverride>,
) -> ApiResult<axum::Json<ChannelOverride>> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::require_channel_permission(&state, channel, user, Permissions::MANAGE_CHANNELS)?;
    if body.role_id.is_some() == body.user_id.is_some() {
        return Err(ApiError::bad_request(
            "Exactly one of role_id and user_id must be given",
        ));
    }
    if body.allow & body.deny != 0 {
        return Err(ApiError::bad_request(
            "allow and deny must not share a permission",
        ));
    }
    check_bits(body.allow, "allow")?;
    check_bits(body.deny, "deny")?;
    // Concord: the target belongs to the channel's server (the reference takes any
    // role or user that exists).
    if let Some(role) = body.role_id {
        let of_this_server = state
            .store
            .role(role)
            .await?
            .is_some_and(|r| r.server_id == facts.server);
        if !of_this_server {
            return Err(ApiError::not_found("Role not found"));
        }
    }
    if let Some(target) = body.user_id
        && !state.directory.is_member(facts.server, target)
    {
        return Err(ApiError::not_found("Member not found"));
    }
    let wanted = ChannelOverride {
        id: OverrideId::new(),
        channel_id: channel,
        role_id: body.role_id,
        user_id: body.user_id,
        allow: body.allow,
        deny: body.deny,
    };
    let audit = super::audit::record(
        facts.server,
        user,
        "channel_override_update",
        "channel",
        channel.get(),
        // `override_id` is filled in by the store: an upsert keeps an earlier row's id.
        serde_json::json!({
            "override_id": null,
            "role_id": body.role_id,
            "user_id": body.user_id,
            "allow": body.allow,
            "deny": body.deny,
        }),
    );
    let (stored, changed) = state
        .store
        .set_override(&wanted, Some(&audit))
        .await
        .map_err(|err| match err {
            // The channel, role or user went away since the checks.
            concord_store::StoreError::NotFound => ApiError::not_found("Not found"),
            other => other.into(),
        })?;
    if changed {
        visibility::publish_permission_change(
            &state,
            DirectoryChange::OverrideUpserted(stored.clone()),
        )
        .await;
        state.events.dispatch(
            Audience::Server(facts.server),
            Event::ChannelOverrideUpdate,
            &stored,
        );
    }
    Ok(axum::Json(stored))
}

#[utoipa::path(
    delete,
    path = "/channels/{channel_id}/overrides/{override_id}",
    tag = "channels",
    description = "Deletes one of the channel's overrides (MANAGE_CHANNELS on this channel).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("override_id" = OverrideId, Path, description = "The override, of that channel."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller lacks MANAGE_CHANNELS on the channel.", body = ErrorBody),
        (status = 404, description = "No such channel or override on it, or the caller is not \
                                      a member of its server.", body = ErrorBody),
    ),
)]
async fn delete_override(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, id)): Path<(ChannelId, OverrideId)>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    access::require_channel_permission(&state, channel, user, Permissions::MANAGE_CHANNELS)?;
    let audit = super::audit::record(
        facts.server,
        user,
        "channel_override_delete",
        "channel",
        channel.get(),
        serde_json::json!({ "override_id": id }),
    );
    if !state
        .store
        .delete_override(channel, id, Some(&audit))
        .await?
    {
        return Err(ApiError::not_found("Override not found"));
    }
    visibility::publish_permission_change(&state, DirectoryChange::OverrideDeleted { channel, id })
        .await;
    let deleted = OverrideDelete {
        channel_id: channel,
        override_id: id,
    };
    state.events.dispatch(
        Audience::Server(facts.server),
        Event::ChannelOverrideDelete,
        &deleted,
    );
    Ok(StatusCode::NO_CONTENT)
}
