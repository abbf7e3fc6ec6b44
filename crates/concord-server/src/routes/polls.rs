//! Routes: polls (`rest.md` §7.10).
//!
//! A poll is announced by a message (`"📊 **Poll**: "` + question) that carries it.
//! Concord gates creation like a message (R3) and reading and voting by VIEW_CHANNEL
//! (R2). A vote is published as POLL_VOTE to the channel's viewers with each
//! recipient's own `user_vote` (D15), and only when it changed something.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    CastVote, ChannelId, CreatePoll, ErrorBody, Event, Message, MessageId, Poll, PollId,
    PollOptionId, PollVote, Timestamp, UserId,
};
use concord_store::{NewMessage, NewPoll, PollRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    poll_views,
    state::AppState,
};

/// What a poll's announcing message says before the question.
pub const POLL_PREFIX: &str = "📊 **Poll**: ";
/// Longest question, in bytes.
const MAX_QUESTION_BYTES: usize = 500;
/// Longest option, in bytes.
const MAX_OPTION_BYTES: usize = 200;
/// How many options a poll has.
const OPTION_COUNT: std::ops::RangeInclusive<usize> = 2..=10;

/// The poll routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_poll))
        .routes(routes!(get_poll))
        .routes(routes!(cast_vote))
}

/// The options, trimmed, after the contract's checks in its order: their count, then
/// each option, then the question.
fn validate(body: &CreatePoll) -> ApiResult<Vec<String>> {
    if !OPTION_COUNT.contains(&body.options.len()) {
        return Err(ApiError::bad_request("A poll needs 2-10 options"));
    }
    let options = body
        .options
        .iter()
        .map(|option| {
            let trimmed = option.trim();
            if trimmed.is_empty() || option.len() > MAX_OPTION_BYTES {
                Err(ApiError::bad_request(
                    "Each option must be non-blank and at most 200 bytes",
                ))
            } else {
                Ok(trimmed.to_owned())
            }
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if body.question.trim().is_empty() || body.question.len() > MAX_QUESTION_BYTES {
        return Err(ApiError::bad_request(
            "The question must be non-blank and at most 500 bytes",
        ));
    }
    Ok(options)
}

fn poll_not_found() -> ApiError {
    ApiError::not_found("Poll not found")
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/polls",
    tag = "messages",
    description = "Posts a poll: a message whose content is `📊 **Poll**: ` and the \
                   question, carrying the poll. Mentions are not parsed.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The channel.")),
    request_body = CreatePoll,
    responses(
        (status = 201, description = "The message carrying the new poll.", body = Message),
        (status = 400, description = "Not 2-10 options, a blank or too long option, or a \
                                      blank or too long question.", body = ErrorBody),
        (status = 403, description = "The caller may not view or send in the channel, or is \
                                      timed out in the server.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its \
                                      server.", body = ErrorBody),
    ),
)]
async fn create_poll(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
    Json(body): Json<CreatePoll>,
) -> ApiResult<Response> {
    let options = validate(&body)?;
    let user = principal.id();
    let now = Timestamp::now();
    access::channel_poster(&state, channel, user, now)?;
    let poll = NewPoll {
        id: PollId::new(),
        options: options
            .into_iter()
            .map(|text| (PollOptionId::new(), text))
            .collect(),
        question: body.question,
    };
    let message = state
        .store
        .create_poll(
            &NewMessage {
                id: MessageId::new(),
                channel_id: channel,
                author_id: user,
                content: format!("{POLL_PREFIX}{}", poll.question),
                reply_to: None,
                mention_user_ids: Vec::new(),
                mention_everyone: false,
                thread_id: None,
                created_at: now,
                node: state.events.node(),
            },
            &poll,
        )
        .await?;
    state
        .events
        .dispatch(Audience::Channel(channel), Event::MessageCreate, &message);
    Ok((StatusCode::CREATED, axum::Json(message)).into_response())
}

/// The poll `id` with where it lives.
///
/// # Errors
/// 404 when there is no such poll; store failures.
async fn poll_record(state: &AppState, id: PollId) -> ApiResult<PollRecord> {
    state.store.poll(id).await?.ok_or_else(poll_not_found)
}

/// The caller belongs to the poll's server and may VIEW its channel.
///
/// # Errors
/// 404 when not a member (as for a missing poll); 403 without VIEW_CHANNEL.
fn poll_viewer(state: &AppState, record: &PollRecord, user: UserId) -> ApiResult<()> {
    access::member_channel(state, record.channel_id, user).map_err(|_| poll_not_found())?;
    access::require_channel_permission(state, record.channel_id, user, Permissions::VIEW_CHANNEL)
}

#[utoipa::path(
    get,
    path = "/polls/{poll_id}",
    tag = "messages",
    description = "A poll with its counts and the caller's own vote.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("poll_id" = PollId, Path, description = "The poll.")),
    responses(
        (status = 200, description = "The poll.", body = Poll),
        (status = 403, description = "The caller may not view the poll's channel.", body = ErrorBody),
        (status = 404, description = "No such poll, or the caller is not a member of its \
                                      server.", body = ErrorBody),
    ),
)]
async fn get_poll(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<PollId>,
) -> ApiResult<axum::Json<Poll>> {
    let user = principal.id();
    let record = poll_record(&state, id).await?;
    poll_viewer(&state, &record, user)?;
    let mut poll = record.poll;
    poll.user_vote = state
        .store
        .user_votes(user, &[id])
        .await?
        .into_iter()
        .next()
        .map(|(_, option)| option);
    Ok(axum::Json(poll))
}

#[utoipa::path(
    post,
    path = "/polls/{poll_id}/vote",
    tag = "messages",
    description = "Votes for one option; voting again replaces the vote. Every viewer of \
                   the poll's channel gets POLL_VOTE with their own `user_vote`.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("poll_id" = PollId, Path, description = "The poll.")),
    request_body = CastVote,
    responses(
        (status = 200, description = "The poll after the vote, as the caller sees it.", body = Poll),
        (status = 400, description = "The option is not one of this poll's.", body = ErrorBody),
        (status = 403, description = "The caller may not view the poll's channel.", body = ErrorBody),
        (status = 404, description = "No such poll, or the caller is not a member of its \
                                      server.", body = ErrorBody),
    ),
)]
async fn cast_vote(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<PollId>,
    Json(body): Json<CastVote>,
) -> ApiResult<axum::Json<Poll>> {
    let user = principal.id();
    let record = poll_record(&state, id).await?;
    // The reference checks the option before membership.
    if !record.poll.options.iter().any(|o| o.id == body.option_id) {
        return Err(ApiError::bad_request("Option is not part of this poll"));
    }
    poll_viewer(&state, &record, user)?;
    let channel = record.channel_id;
    let outcome = state
        .store
        .cast_vote(id, user, body.option_id, Timestamp::now())
        .await
        .map_err(|err| match err {
            concord_store::StoreError::NotFound => poll_not_found(),
            other => other.into(),
        })?;
    let updated = outcome.poll.poll;
    if outcome.changed {
        poll_views::dispatch_by_vote(
            &state,
            Audience::Channel(channel),
            Event::PollVote,
            &outcome.ballots,
            |user_vote| PollVote {
                poll_id: id,
                channel_id: channel,
                updated_poll: Poll {
                    user_vote,
                    ..updated.clone()
                },
            },
        );
    }
    Ok(axum::Json(poll_views::as_seen_by(
        &updated,
        user,
        &outcome.ballots,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(question: &str, options: &[&str]) -> CreatePoll {
        CreatePoll {
            question: question.to_owned(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    #[test]
    fn options_are_trimmed_and_checked_before_the_question() {
        assert_eq!(
            validate(&body("Lunch?", &[" pizza ", "soup"])).unwrap(),
            ["pizza", "soup"]
        );
        // Both the options and the question are wrong: the options answer.
        let err = validate(&body("", &["only one"])).unwrap_err();
        assert!(err.message().contains("2-10"), "{}", err.message());
        let err = validate(&body("", &["a", "   "])).unwrap_err();
        assert!(err.message().contains("option"), "{}", err.message());
        let err = validate(&body("  ", &["a", "b"])).unwrap_err();
        assert!(err.message().contains("question"), "{}", err.message());
    }

    #[test]
    fn limits_are_counted_in_bytes() {
        let ten: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
        assert!(validate(&body("q", &ten)).is_ok());
        let eleven: Vec<&str> = ten.iter().copied().chain(["x"]).collect();
        assert!(validate(&body("q", &eleven)).is_err());
        let option = "é".repeat(100); // 200 bytes
        assert!(validate(&body("q", &[&option, "b"])).is_ok());
        let option = format!("{option}a");
        assert!(validate(&body("q", &[&option, "b"])).is_err());
        let question = "é".repeat(250); // 500 bytes
        assert!(validate(&body(&question, &["a", "b"])).is_ok());
        assert!(validate(&body(&format!("{question}a"), &["a", "b"])).is_err());
    }
}
