//! Routes: threads under a root message (`rest.md` §7.7).
//!
//! Concord gates replies like messages (R3: VIEW + SEND_MESSAGES, not timed out) and
//! reading like any channel content (R2: VIEW_CHANNEL). Replies go out as
//! THREAD_MESSAGE_CREATE to the channel's viewers, never as MESSAGE_CREATE.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    ChannelId, CreateThreadReply, ErrorBody, Event, Message, MessageId, ThreadQuery, Timestamp,
};
use concord_store::NewMessage;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path, Query},
    poll_views,
    routes::messages::{check_content, resolve_mentions},
    state::AppState,
};

/// The thread routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_thread, reply_in_thread))
}

fn root_not_found() -> ApiError {
    ApiError::not_found("Message not found")
}

/// The live message `id` of `channel`: a thread's root must be one.
///
/// # Errors
/// 404 when it is missing, deleted or in another channel; store failures.
pub(crate) async fn live_message_in(
    state: &AppState,
    channel: ChannelId,
    id: MessageId,
) -> ApiResult<Message> {
    state
        .store
        .message(id)
        .await?
        .filter(|m| m.channel_id == channel && !m.deleted)
        .ok_or_else(root_not_found)
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/messages/{message_id}/thread",
    tag = "messages",
    description = "Replies of a thread, oldest first. `before` pages *forward*: the page \
                   starts right after that reply (a cursor that is not a reply of this \
                   thread gives an empty page).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The thread's root message."),
        ThreadQuery,
    ),
    responses(
        (status = 200, description = "The page.", body = Vec<Message>),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or the root is missing, deleted or in another \
                                      channel.", body = ErrorBody),
    ),
)]
async fn list_thread(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, root)): Path<(ChannelId, MessageId)>,
    Query(query): Query<ThreadQuery>,
) -> ApiResult<axum::Json<Vec<Message>>> {
    let user = principal.id();
    access::channel_viewer(&state, channel, user)?;
    live_message_in(&state, channel, root).await?;
    let after = query.before.map(MessageId::from_uuid);
    let mut replies = state
        .store
        .thread_replies(root, after, query.clamped_limit())
        .await?;
    poll_views::fill_user_votes(&state, user, &mut replies).await?;
    Ok(axum::Json(replies))
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/messages/{message_id}/thread",
    tag = "messages",
    description = "Replies in the thread under a root message (threads do not nest). \
                   Mentions are resolved as for a message.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The thread's root message."),
    ),
    request_body = CreateThreadReply,
    responses(
        (status = 201, description = "The reply.", body = Message),
        (status = 400, description = "The content is not 1-4000 characters, or the root is \
                                      itself a thread reply.", body = ErrorBody),
        (status = 403, description = "The caller may not view or send in the channel, or is \
                                      timed out in the server.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or the root is missing, deleted or in another \
                                      channel.", body = ErrorBody),
    ),
)]
async fn reply_in_thread(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, root)): Path<(ChannelId, MessageId)>,
    Json(body): Json<CreateThreadReply>,
) -> ApiResult<Response> {
    check_content(&body.content)?;
    let user = principal.id();
    let now = Timestamp::now();
    let facts = access::channel_poster(&state, channel, user, now)?;
    let root_message = live_message_in(&state, channel, root).await?;
    if root_message.thread_id.is_some() {
        return Err(ApiError::bad_request(
            "Cannot reply in a thread to a thread reply",
        ));
    }
    let (mention_user_ids, mention_everyone) =
        resolve_mentions(&state, facts.server, &body.content).await?;
    let reply = state
        .store
        .create_message(&NewMessage {
            id: MessageId::new(),
            channel_id: channel,
            author_id: user,
            content: body.content,
            reply_to: None,
            mention_user_ids,
            mention_everyone,
            thread_id: Some(root),
            created_at: now,
            node: state.events.node(),
        })
        .await?;
    state.events.dispatch(
        Audience::Channel(channel),
        Event::ThreadMessageCreate,
        &reply,
    );
    Ok((StatusCode::CREATED, axum::Json(reply)).into_response())
}
