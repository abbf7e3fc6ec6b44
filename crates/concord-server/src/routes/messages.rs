//! Routes: messages of server channels (`rest.md` §7.6), and the content and mention
//! rules that thread replies share.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    ChannelId, CreateMessage, EditMessage, ErrorBody, Event, Message, MessageDelete, MessageId,
    MessageQuery, ServerId, Timestamp, UserId, limits,
};
use concord_store::NewMessage;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path, Query},
    perms::Permissions,
    poll_views,
    state::AppState,
    webhooks::WebhookEvent,
};

/// The messages routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
        .routes(routes!(edit, remove))
}

/// Message text is 1–4000 chars (server channels and DMs alike).
///
/// # Errors
/// 400 otherwise.
pub fn check_content(content: &str) -> ApiResult<()> {
    let len = content.chars().count();
    if (1..=limits::MAX_MESSAGE_CHARS).contains(&len) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Message content must be 1-4000 characters",
        ))
    }
}

/// The names `content` mentions and whether it mentions everyone (`rest.md` §7.6
/// "Mention parsing"): whitespace-separated tokens starting with `@`, trailing
/// characters that are neither alphanumeric nor `_` stripped. Names come once each, in
/// order of first appearance.
pub fn mention_names(content: &str) -> (Vec<String>, bool) {
    let mut names: Vec<String> = Vec::new();
    let mut everyone = false;
    for token in content.split_whitespace() {
        let Some(rest) = token.strip_prefix('@') else {
            continue;
        };
        let name = rest.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '_');
        if name.is_empty() {
            continue;
        }
        if name == "everyone" {
            everyone = true;
        } else if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    (names, everyone)
}

/// Resolves the mentions of `content` against the current members of `server`.
///
/// # Errors
/// Store failures.
pub async fn resolve_mentions(
    state: &AppState,
    server: ServerId,
    content: &str,
) -> ApiResult<(Vec<UserId>, bool)> {
    let (names, everyone) = mention_names(content);
    let mut ids = if names.is_empty() {
        Vec::new()
    } else {
        state.store.member_ids_by_usernames(server, &names).await?
    };
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    Ok((ids, everyone))
}

/// Whether changes to `message` reach webhooks: plain channel messages do; thread
/// replies and poll messages never do (`rest-extras.md` §9.2).
fn fires_webhooks(message: &Message) -> bool {
    message.thread_id.is_none() && message.poll.is_none()
}

fn message_not_found() -> ApiError {
    ApiError::not_found("Message not found")
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/messages",
    tag = "messages",
    description = "A page of a channel's messages, newest first.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        MessageQuery,
    ),
    responses(
        (status = 200, description = "The page.", body = Vec<Message>),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its server.", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
    Query(query): Query<MessageQuery>,
) -> ApiResult<axum::Json<Vec<Message>>> {
    let user = principal.id();
    access::member_channel(&state, channel, user)?;
    access::require_channel_permission(&state, channel, user, Permissions::VIEW_CHANNEL)?;
    let before = query.before.map(MessageId::from_uuid);
    let mut messages = state
        .store
        .messages(channel, before, query.clamped_limit())
        .await?;
    poll_views::fill_user_votes(&state, user, &mut messages).await?;
    Ok(axum::Json(messages))
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/messages",
    tag = "messages",
    description = "Posts a message; `@name` and `@everyone` mentions are resolved against \
                   the server's members.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The channel.")),
    request_body = CreateMessage,
    responses(
        (status = 201, description = "The new message.", body = Message),
        (status = 400, description = "The content is not 1-4000 characters.", body = ErrorBody),
        (status = 403, description = "The caller may not view or send in the channel, or is \
                                      timed out in the server.", body = ErrorBody),
        (status = 404, description = "No such channel, the caller is not a member of its \
                                      server, or the replied-to message is not a live message \
                                      of this channel.", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
    Json(body): Json<CreateMessage>,
) -> ApiResult<Response> {
    check_content(&body.content)?;
    let user = principal.id();
    let facts = access::member_channel(&state, channel, user)?;
    // Concord also wants VIEW: nobody writes into a channel they cannot read.
    access::require_channel_permission(
        &state,
        channel,
        user,
        Permissions::VIEW_CHANNEL.union(Permissions::SEND_MESSAGES),
    )?;
    let now = Timestamp::now();
    if state
        .directory
        .timed_out_until(facts.server, user, now)
        .is_some()
    {
        return Err(ApiError::forbidden("You are timed out in this server"));
    }
    // Automod's word filter and duplicate rule refuse before anything is written
    // (`rest-extras.md` §6.2); its spam rule looks after the insert.
    let spam_rule = crate::automod::before_insert(
        &state,
        facts.server,
        channel,
        &principal.user,
        &body.content,
        now,
    )
    .await?;
    if let Some(target) = body.reply_to {
        let live_here = state
            .store
            .message(target)
            .await?
            .is_some_and(|m| m.channel_id == channel && !m.deleted);
        if !live_here {
            return Err(ApiError::not_found("Replied-to message not found"));
        }
    }
    let (mention_user_ids, mention_everyone) =
        resolve_mentions(&state, facts.server, &body.content).await?;
    let message = state
        .store
        .create_message(&NewMessage {
            id: MessageId::new(),
            channel_id: channel,
            author_id: user,
            content: body.content,
            reply_to: body.reply_to,
            mention_user_ids,
            mention_everyone,
            thread_id: None,
            created_at: now,
            node: state.events.node(),
        })
        .await?;
    state
        .events
        .dispatch(Audience::Channel(channel), Event::MessageCreate, &message);
    let removed_as_spam = match spam_rule {
        Some(rules) => {
            crate::automod::after_insert(&state, &rules, &message, &principal.user).await
        }
        None => false,
    };
    // A message automod took down at once never reaches webhooks: they would hear of
    // its creation and never of its deletion.
    if !removed_as_spam {
        state
            .webhooks
            .message_event(facts.server, WebhookEvent::MessageCreated, &message)
            .await;
    }
    Ok((StatusCode::CREATED, axum::Json(message)).into_response())
}

#[utoipa::path(
    get,
    path = "/channels/{channel_id}/messages/{message_id}",
    tag = "messages",
    description = "One message; a deleted one keeps its place with empty content.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("channel_id" = ChannelId, Path, description = "The channel."),
        ("message_id" = MessageId, Path, description = "The message, of that channel."),
    ),
    responses(
        (status = 200, description = "The message.", body = Message),
        (status = 403, description = "The caller may not view the channel.", body = ErrorBody),
        (status = 404, description = "No such channel or message, or the caller is not a \
                                      member of the channel's server.", body = ErrorBody),
    ),
)]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((channel, id)): Path<(ChannelId, MessageId)>,
) -> ApiResult<axum::Json<Message>> {
    let user = principal.id();
    access::member_channel(&state, channel, user)?;
    // Concord (R2): reading content needs VIEW, even one message at a time.
    access::require_channel_permission(&state, channel, user, Permissions::VIEW_CHANNEL)?;
    let mut message = state
        .store
        .message(id)
        .await?
        .filter(|m| m.channel_id == channel)
        .ok_or_else(message_not_found)?;
    if message.deleted {
        // Concord (R4): a deleted message keeps its place but not its text.
        message.content.clear();
    }
    poll_views::fill_user_vote(&state, user, &mut message).await?;
    Ok(axum::Json(message))
}

/// A live message, its channel's server, with the caller a member there.
async fn live_message_for_member(
    state: &AppState,
    id: MessageId,
    user: UserId,
) -> ApiResult<(Message, ServerId)> {
    let message = state
        .store
        .message(id)
        .await?
        .filter(|m| !m.deleted)
        .ok_or_else(message_not_found)?;
    let facts = access::member_channel(state, message.channel_id, user)?;
    Ok((message, facts.server))
}

#[utoipa::path(
    patch,
    path = "/messages/{message_id}",
    tag = "messages",
    description = "Edits a message (author only); mentions are resolved again.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("message_id" = MessageId, Path, description = "The message.")),
    request_body = EditMessage,
    responses(
        (status = 200, description = "The edited message.", body = Message),
        (status = 400, description = "The content is not 1-4000 characters.", body = ErrorBody),
        (status = 403, description = "The caller is not the author.", body = ErrorBody),
        (status = 404, description = "No such live message, or the caller is not a member of \
                                      its server.", body = ErrorBody),
    ),
)]
async fn edit(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<MessageId>,
    Json(body): Json<EditMessage>,
) -> ApiResult<axum::Json<Message>> {
    check_content(&body.content)?;
    let user = principal.id();
    let (message, server) = live_message_for_member(&state, id, user).await?;
    if message.author_id != Some(user) {
        return Err(ApiError::forbidden("Only the author can edit this message"));
    }
    let (mentions, everyone) = resolve_mentions(&state, server, &body.content).await?;
    let mut edited = state
        .store
        .edit_message(id, &body.content, &mentions, everyone, Timestamp::now())
        .await?
        .ok_or_else(message_not_found)?;
    // Each viewer gets the message with their own vote, should it carry a poll.
    poll_views::dispatch_message(&state, Event::MessageUpdate, &edited).await;
    if fires_webhooks(&edited) {
        state
            .webhooks
            .message_event(server, WebhookEvent::MessageUpdated, &edited)
            .await;
    }
    poll_views::fill_user_vote(&state, user, &mut edited).await?;
    Ok(axum::Json(edited))
}

#[utoipa::path(
    delete,
    path = "/messages/{message_id}",
    tag = "messages",
    description = "Deletes a message (its author or the server owner).",
    security(("bearer" = []), ("bot_token" = [])),
    params(("message_id" = MessageId, Path, description = "The message.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is neither the author nor the server owner.", body = ErrorBody),
        (status = 404, description = "No such live message, or the caller is not a member of \
                                      its server.", body = ErrorBody),
    ),
)]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<MessageId>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    let (message, server) = live_message_for_member(&state, id, user).await?;
    let is_owner = state.directory.owner(server) == Some(user);
    if message.author_id != Some(user) && !is_owner {
        return Err(ApiError::forbidden(
            "Only the author or the server owner can delete this",
        ));
    }
    if !delete_and_announce(&state, id, message.channel_id).await? {
        // Someone else deleted it between our read and our write.
        return Err(message_not_found());
    }
    // Deleted by a person: webhooks hear of it (automod's deletions never fire them,
    // as in the reference).
    if fires_webhooks(&message) {
        let deleted = MessageDelete {
            id,
            channel_id: message.channel_id,
        };
        state
            .webhooks
            .message_event(server, WebhookEvent::MessageDeleted, &deleted)
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The core of a message delete, shared with automod: soft-deletes message `id` of
/// `channel`, sends MESSAGE_DELETE to the channel and removes its attachments' files.
/// False (and nothing sent) when it was already deleted.
///
/// # Errors
/// Store failures.
pub(crate) async fn delete_and_announce(
    state: &AppState,
    id: MessageId,
    channel: ChannelId,
) -> ApiResult<bool> {
    if !state.store.delete_message(id).await? {
        return Ok(false);
    }
    let deleted = MessageDelete {
        id,
        channel_id: channel,
    };
    state
        .events
        .dispatch(Audience::Channel(channel), Event::MessageDelete, &deleted);
    // Its attachments' rows went with the soft delete; their files go now (X4).
    crate::attachments::purge_files(state).await;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_strip_trailing_punctuation_and_dedupe() {
        let (names, everyone) = mention_names("hi @alice! and @bob, @alice @everyone? @ @!! a@b");
        assert_eq!(names, vec!["alice".to_string(), "bob".to_string()]);
        assert!(everyone);
        let (names, everyone) = mention_names("@under_score_ @x.y @Alice");
        assert_eq!(
            names,
            vec![
                "under_score_".to_string(),
                "x.y".to_string(),
                "Alice".to_string()
            ]
        );
        assert!(!everyone);
    }

    #[test]
    fn content_is_counted_in_chars() {
        assert!(check_content(&"é".repeat(4000)).is_ok());
        assert!(check_content(&"a".repeat(4001)).is_err());
        assert!(check_content("").is_err());
    }
}
