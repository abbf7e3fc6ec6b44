//! Threads, reactions, pins, polls and scheduled events: everything that hangs off a
//! server-channel message besides its text and mentions.

use std::collections::HashMap;

use concord_protocol::{
    ChannelId, Message, MessageId, Poll, PollId, PollOption, PollOptionId, ReactionCount,
    ServerEvent, ServerId, Timestamp, UserId,
};
use sqlx::{
    AssertSqlSafe, PgConnection, Postgres,
    postgres::{PgArguments, PgPool, PgRow},
    query::Query,
};

use super::PostgresStore;
use super::{get, id, messages, opt_id, read_tx, rows, ts, uuids, write_tx};
use crate::ContentStore;
use crate::{
    NewMessage, NewPoll, NewServerEvent, PollRecord, StoreError, StoreResult, VoteOutcome,
};
use async_trait::async_trait;

// ---- poll options ----
//
// The poll and event parts of a message row (`poll_stub`, `event_of_row`,
// `attach_poll_options`) live beside `messages::MESSAGE_SELECT` in `messages.rs`.

/// The options of `polls` with their vote counts, in creation order, by poll.
async fn options_of(
    conn: &mut PgConnection,
    polls: &[PollId],
) -> StoreResult<HashMap<PollId, Vec<PollOption>>> {
    let found = sqlx::query(
        "SELECT o.poll_id, o.id, o.text, \
         (SELECT COUNT(*) FROM poll_votes v WHERE v.option_id = o.id) AS votes \
         FROM poll_options o WHERE o.poll_id = ANY($1) ORDER BY o.poll_id, o.ord",
    )
    .bind(uuids(polls))
    .fetch_all(&mut *conn)
    .await?;
    let mut by_poll: HashMap<PollId, Vec<PollOption>> = HashMap::new();
    for row in &found {
        by_poll
            .entry(id(row, "poll_id")?)
            .or_default()
            .push(PollOption {
                id: id(row, "id")?,
                text: get(row, "text")?,
                votes: get(row, "votes")?,
            });
    }
    Ok(by_poll)
}

/// Gives `poll` its options and its total.
fn fill_poll(poll: &mut Poll, options: Vec<PollOption>) {
    poll.total_votes = options.iter().map(|o| o.votes).sum();
    poll.options = options;
}

/// Runs a message query and completes its rows.
async fn fetch_messages(
    conn: &mut PgConnection,
    query: Query<'_, Postgres, PgArguments>,
) -> StoreResult<Vec<Message>> {
    let found = query.fetch_all(&mut *conn).await?;
    let mut messages = rows(&found, messages::message_row)?;
    messages::complete(conn, &mut messages).await?;
    Ok(messages)
}

// ---- threads ----

pub(super) async fn thread_replies(
    pool: &PgPool,
    root: MessageId,
    after: Option<MessageId>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let limit = limit.max(0);
    let mut tx = read_tx(pool).await?;
    let replies = match after {
        None => {
            let sql = format!(
                "{} WHERE m.thread_id = $1 AND NOT m.deleted \
                 ORDER BY m.created_at, m.id LIMIT $2",
                messages::MESSAGE_SELECT
            );
            let query = sqlx::query(AssertSqlSafe(sql)).bind(root.get()).bind(limit);
            fetch_messages(&mut tx, query).await?
        }
        Some(cursor) => {
            let anchor =
                sqlx::query("SELECT created_at FROM messages WHERE id = $1 AND thread_id = $2")
                    .bind(cursor.get())
                    .bind(root.get())
                    .fetch_optional(&mut *tx)
                    .await?;
            match anchor {
                None => Vec::new(),
                Some(anchor) => {
                    let sql = format!(
                        "{} WHERE m.thread_id = $1 AND NOT m.deleted \
                         AND (m.created_at, m.id) > ($2, $3) \
                         ORDER BY m.created_at, m.id LIMIT $4",
                        messages::MESSAGE_SELECT
                    );
                    let query = sqlx::query(AssertSqlSafe(sql))
                        .bind(root.get())
                        .bind(get::<i64>(&anchor, "created_at")?)
                        .bind(cursor.get())
                        .bind(limit);
                    fetch_messages(&mut tx, query).await?
                }
            }
        }
    };
    tx.commit().await?;
    Ok(replies)
}

// ---- reactions ----

pub(super) async fn add_reaction(
    pool: &PgPool,
    message: MessageId,
    user: UserId,
    emoji: &str,
    at: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO reactions (message_id, user_id, emoji, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (message_id, user_id, emoji) DO NOTHING",
    )
    .bind(message.get())
    .bind(user.get())
    .bind(emoji)
    .bind(at.as_micros())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn remove_reaction(
    pool: &PgPool,
    message: MessageId,
    user: UserId,
    emoji: &str,
) -> StoreResult<bool> {
    let done =
        sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3")
            .bind(message.get())
            .bind(user.get())
            .bind(emoji)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn reactions(
    pool: &PgPool,
    message: MessageId,
    viewer: UserId,
) -> StoreResult<Vec<ReactionCount>> {
    // `seq` (an identity column) stands in for SQLite's rowid: insertion order among
    // first uses at the same time.
    let found = sqlx::query(
        "SELECT emoji, COUNT(*) AS n, BOOL_OR(user_id = $1) AS me FROM reactions \
         WHERE message_id = $2 GROUP BY emoji \
         ORDER BY MIN(created_at), MIN(seq)",
    )
    .bind(viewer.get())
    .bind(message.get())
    .fetch_all(pool)
    .await?;
    rows(&found, |row| {
        Ok(ReactionCount {
            emoji: get(row, "emoji")?,
            count: get(row, "n")?,
            me: get(row, "me")?,
        })
    })
}

// ---- pins ----

pub(super) async fn pin_message(
    pool: &PgPool,
    message: MessageId,
    by: UserId,
    at: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE messages SET pinned = TRUE, pinned_by = $1, pinned_at = $2 \
         WHERE id = $3 AND NOT deleted AND NOT pinned",
    )
    .bind(by.get())
    .bind(at.as_micros())
    .bind(message.get())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn unpin_message(pool: &PgPool, message: MessageId) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE messages SET pinned = FALSE, pinned_by = NULL, pinned_at = NULL \
         WHERE id = $1 AND pinned",
    )
    .bind(message.get())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn pinned_messages(
    pool: &PgPool,
    channel: ChannelId,
) -> StoreResult<Vec<Message>> {
    let mut tx = read_tx(pool).await?;
    let sql = format!(
        "{} WHERE m.channel_id = $1 AND m.pinned AND NOT m.deleted \
         ORDER BY m.pinned_at DESC, m.id DESC",
        messages::MESSAGE_SELECT
    );
    let query = sqlx::query(AssertSqlSafe(sql)).bind(channel.get());
    let pinned = fetch_messages(&mut tx, query).await?;
    tx.commit().await?;
    Ok(pinned)
}

// ---- polls ----

pub(super) async fn create_poll(
    pool: &PgPool,
    message: &NewMessage,
    poll: &NewPoll,
) -> StoreResult<Message> {
    let mut tx = write_tx(pool).await?;
    messages::insert_message(&mut tx, message).await?;
    sqlx::query(
        "INSERT INTO polls (id, message_id, channel_id, question, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(poll.id.get())
    .bind(message.id.get())
    .bind(message.channel_id.get())
    .bind(&poll.question)
    .bind(message.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    for (ord, (option, text)) in poll.options.iter().enumerate() {
        sqlx::query("INSERT INTO poll_options (id, poll_id, text, ord) VALUES ($1, $2, $3, $4)")
            .bind(option.get())
            .bind(poll.id.get())
            .bind(text)
            .bind(i64::try_from(ord).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let mut created = messages::created(message);
    created.poll = Some(Poll {
        id: poll.id,
        question: poll.question.clone(),
        options: poll
            .options
            .iter()
            .map(|(id, text)| PollOption {
                id: *id,
                text: text.clone(),
                votes: 0,
            })
            .collect(),
        total_votes: 0,
        user_vote: None,
    });
    Ok(created)
}

async fn fetch_poll(conn: &mut PgConnection, poll: PollId) -> StoreResult<Option<PollRecord>> {
    let row = sqlx::query("SELECT id, question, message_id, channel_id FROM polls WHERE id = $1")
        .bind(poll.get())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut record = PollRecord {
        poll: Poll {
            id: id(&row, "id")?,
            question: get(&row, "question")?,
            options: Vec::new(),
            total_votes: 0,
            user_vote: None,
        },
        message_id: id(&row, "message_id")?,
        channel_id: id(&row, "channel_id")?,
    };
    let options = options_of(conn, &[poll]).await?.remove(&poll);
    fill_poll(&mut record.poll, options.unwrap_or_default());
    Ok(Some(record))
}

async fn fetch_ballots(
    conn: &mut PgConnection,
    poll: PollId,
) -> StoreResult<Vec<(UserId, PollOptionId)>> {
    let found = sqlx::query("SELECT user_id, option_id FROM poll_votes WHERE poll_id = $1")
        .bind(poll.get())
        .fetch_all(&mut *conn)
        .await?;
    rows(&found, |row| {
        Ok((id(row, "user_id")?, id(row, "option_id")?))
    })
}

pub(super) async fn poll(pool: &PgPool, poll: PollId) -> StoreResult<Option<PollRecord>> {
    let mut tx = read_tx(pool).await?;
    let record = fetch_poll(&mut tx, poll).await?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn poll_ballots(
    pool: &PgPool,
    poll: PollId,
) -> StoreResult<Vec<(UserId, PollOptionId)>> {
    fetch_ballots(&mut *pool.acquire().await?, poll).await
}

pub(super) async fn user_votes(
    pool: &PgPool,
    user: UserId,
    polls: &[PollId],
) -> StoreResult<Vec<(PollId, PollOptionId)>> {
    if polls.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query(
        "SELECT poll_id, option_id FROM poll_votes WHERE user_id = $1 AND poll_id = ANY($2)",
    )
    .bind(user.get())
    .bind(uuids(polls))
    .fetch_all(pool)
    .await?;
    rows(&found, |row| {
        Ok((id(row, "poll_id")?, id(row, "option_id")?))
    })
}

pub(super) async fn cast_vote(
    pool: &PgPool,
    poll: PollId,
    user: UserId,
    option: PollOptionId,
    at: Timestamp,
) -> StoreResult<VoteOutcome> {
    let mut tx = write_tx(pool).await?;
    // Votes on one poll take turns on the poll's row, so that the counts and ballots
    // read back below are those of this vote and no later one.
    let locked = sqlx::query("SELECT 1 FROM polls WHERE id = $1 FOR UPDATE")
        .bind(poll.get())
        .fetch_optional(&mut *tx)
        .await?;
    if locked.is_none() {
        return Err(StoreError::NotFound);
    }
    // The update leaves an unchanged vote alone; the composite reference refuses an
    // option of another poll, and the user's reference a missing user.
    let done = sqlx::query(
        "INSERT INTO poll_votes (poll_id, user_id, option_id, voted_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (poll_id, user_id) DO UPDATE \
         SET option_id = excluded.option_id, voted_at = excluded.voted_at \
         WHERE poll_votes.option_id <> excluded.option_id",
    )
    .bind(poll.get())
    .bind(user.get())
    .bind(option.get())
    .bind(at.as_micros())
    .execute(&mut *tx)
    .await?;
    // No row counted means the user had already chosen this very option: a vote
    // naming an option of another poll always attempts a write, and fails.
    let changed = done.rows_affected() == 1;
    let record = fetch_poll(&mut tx, poll)
        .await?
        .ok_or(StoreError::NotFound)?;
    let ballots = fetch_ballots(&mut tx, poll).await?;
    tx.commit().await?;
    Ok(VoteOutcome {
        poll: record,
        ballots,
        changed,
    })
}

// ---- scheduled events ----

pub(super) async fn create_server_event(
    pool: &PgPool,
    message: &NewMessage,
    event: &NewServerEvent,
) -> StoreResult<Message> {
    let mut tx = write_tx(pool).await?;
    messages::insert_message(&mut tx, message).await?;
    // The server is the channel's: read in the same statement, so it cannot disagree.
    let row = sqlx::query(
        "INSERT INTO server_events (id, server_id, channel_id, message_id, name, description, \
         starts_at, created_by, created_at) \
         SELECT $1, c.server_id, c.id, $2, $3, $4, $5, $6, $7 FROM channels c WHERE c.id = $8 \
         RETURNING created_by",
    )
    .bind(event.id.get())
    .bind(message.id.get())
    .bind(&event.name)
    .bind(&event.description)
    .bind(event.starts_at.as_micros())
    .bind(message.author_id.get())
    .bind(message.created_at.as_micros())
    .bind(message.channel_id.get())
    .fetch_optional(&mut *tx)
    .await?;
    if row.is_none() {
        // Unreachable after the message insert (which needs the channel); kept so the
        // method cannot report success without its event.
        return Err(StoreError::NotFound);
    }
    tx.commit().await?;
    let mut created = messages::created(message);
    created.event = Some(ServerEvent {
        id: event.id,
        name: event.name.clone(),
        description: event.description.clone(),
        starts_at: event.starts_at,
        created_by: Some(message.author_id),
        created_at: message.created_at,
    });
    Ok(created)
}

fn server_event_row(row: &PgRow) -> StoreResult<ServerEvent> {
    Ok(ServerEvent {
        id: id(row, "id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        starts_at: ts(row, "starts_at")?,
        created_by: opt_id(row, "created_by")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn upcoming_server_events(
    pool: &PgPool,
    server: ServerId,
    channels: &[ChannelId],
    after: Timestamp,
    limit: i64,
) -> StoreResult<Vec<ServerEvent>> {
    let limit = limit.max(0);
    if channels.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let found = sqlx::query(
        "SELECT id, name, description, starts_at, created_by, created_at \
         FROM server_events WHERE server_id = $1 AND starts_at > $2 \
         AND channel_id = ANY($3) ORDER BY starts_at, id LIMIT $4",
    )
    .bind(server.get())
    .bind(after.as_micros())
    .bind(uuids(channels))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows(&found, server_event_row)
}

#[async_trait]
impl ContentStore for PostgresStore {
    async fn thread_replies(
        &self,
        root: MessageId,
        after: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        thread_replies(&self.pool, root, after, limit).await
    }

    async fn add_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        add_reaction(&self.pool, message, user, emoji, at).await
    }

    async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> StoreResult<bool> {
        remove_reaction(&self.pool, message, user, emoji).await
    }

    async fn reactions(
        &self,
        message: MessageId,
        viewer: UserId,
    ) -> StoreResult<Vec<ReactionCount>> {
        reactions(&self.pool, message, viewer).await
    }

    async fn pin_message(&self, id: MessageId, by: UserId, at: Timestamp) -> StoreResult<bool> {
        pin_message(&self.pool, id, by, at).await
    }

    async fn unpin_message(&self, id: MessageId) -> StoreResult<bool> {
        unpin_message(&self.pool, id).await
    }

    async fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<Message>> {
        pinned_messages(&self.pool, channel).await
    }

    async fn create_poll(&self, message: &NewMessage, poll: &NewPoll) -> StoreResult<Message> {
        create_poll(&self.pool, message, poll).await
    }

    async fn poll(&self, id: PollId) -> StoreResult<Option<PollRecord>> {
        poll(&self.pool, id).await
    }

    async fn poll_ballots(&self, id: PollId) -> StoreResult<Vec<(UserId, PollOptionId)>> {
        poll_ballots(&self.pool, id).await
    }

    async fn user_votes(
        &self,
        user: UserId,
        polls: &[PollId],
    ) -> StoreResult<Vec<(PollId, PollOptionId)>> {
        user_votes(&self.pool, user, polls).await
    }

    async fn cast_vote(
        &self,
        poll: PollId,
        user: UserId,
        option: PollOptionId,
        at: Timestamp,
    ) -> StoreResult<VoteOutcome> {
        cast_vote(&self.pool, poll, user, option, at).await
    }

    async fn create_server_event(
        &self,
        message: &NewMessage,
        event: &NewServerEvent,
    ) -> StoreResult<Message> {
        create_server_event(&self.pool, message, event).await
    }

    async fn upcoming_server_events(
        &self,
        server: ServerId,
        channels: &[ChannelId],
        after: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ServerEvent>> {
        upcoming_server_events(&self.pool, server, channels, after, limit).await
    }
}
