//! Server channel messages, their mentions, and read state.

use std::collections::HashMap;

use concord_protocol::{
    ChannelId, DmChannelId, MentionCount, Message, MessageId, Poll, PollId, PollOption,
    ServerEvent, Timestamp, UnreadCount, UserId,
};
use sqlx::{
    AssertSqlSafe, PgConnection, Postgres,
    postgres::{PgArguments, PgPool, PgRow},
    query::Query,
};
use uuid::Uuid;

use super::PostgresStore;
use super::{get, id, opt_id, opt_ts, read_tx, rows, ts, uuids, write_tx};
use crate::MessageStore;
use crate::shared::dedup;
use crate::{NewMessage, StoreError, StoreResult};
use async_trait::async_trait;

/// A message row with its live thread reply count, its poll's question and its
/// scheduled event, as [`message_row`] reads it (alias `m`).
pub(super) const MESSAGE_SELECT: &str = "SELECT m.id, m.channel_id, m.author_id, m.content, \
    m.reply_to, m.thread_id, m.mention_everyone, m.edited_at, m.deleted, m.pinned, \
    m.pinned_by, m.pinned_at, m.created_at, \
    (SELECT COUNT(*) FROM messages r WHERE r.thread_id = m.id AND NOT r.deleted) \
    AS thread_reply_count, \
    p.id AS poll_id, p.question AS poll_question, \
    e.id AS event_id, e.name AS event_name, e.description AS event_description, \
    e.starts_at AS event_starts_at, e.created_by AS event_created_by, \
    e.created_at AS event_created_at \
    FROM messages m \
    LEFT JOIN polls p ON p.message_id = m.id \
    LEFT JOIN server_events e ON e.message_id = m.id";

/// A message row without its mentions and poll options (filled in by [`complete`]).
pub(super) fn message_row(row: &PgRow) -> StoreResult<Message> {
    Ok(Message {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        author_id: opt_id(row, "author_id")?,
        content: get(row, "content")?,
        reply_to: opt_id(row, "reply_to")?,
        mention_user_ids: Vec::new(),
        mention_everyone: get(row, "mention_everyone")?,
        thread_id: opt_id(row, "thread_id")?,
        thread_reply_count: get(row, "thread_reply_count")?,
        edited_at: opt_ts(row, "edited_at")?,
        deleted: get(row, "deleted")?,
        created_at: ts(row, "created_at")?,
        pinned: get(row, "pinned")?,
        pinned_by: opt_id(row, "pinned_by")?,
        pinned_at: opt_ts(row, "pinned_at")?,
        poll: poll_stub(row)?,
        event: event_of_row(row)?,
    })
}

// ---- the poll and event parts of a message row ----
//
// Kept here until `content.rs` has its own port of them (SQLite keeps them there).

/// The poll of a message row, without its options and counts
/// ([`attach_poll_options`] adds them).
fn poll_stub(row: &PgRow) -> StoreResult<Option<Poll>> {
    let Some(poll) = opt_id(row, "poll_id")? else {
        return Ok(None);
    };
    Ok(Some(Poll {
        id: poll,
        question: get(row, "poll_question")?,
        options: Vec::new(),
        total_votes: 0,
        user_vote: None,
    }))
}

/// The scheduled event of a message row.
fn event_of_row(row: &PgRow) -> StoreResult<Option<ServerEvent>> {
    let Some(event) = opt_id(row, "event_id")? else {
        return Ok(None);
    };
    Ok(Some(ServerEvent {
        id: event,
        name: get(row, "event_name")?,
        description: get(row, "event_description")?,
        starts_at: ts(row, "event_starts_at")?,
        created_by: opt_id(row, "event_created_by")?,
        created_at: ts(row, "event_created_at")?,
    }))
}

/// Fills in the options (in creation order) and vote counts of the polls of
/// `messages`.
async fn attach_poll_options(conn: &mut PgConnection, messages: &mut [Message]) -> StoreResult<()> {
    let polls: Vec<PollId> = messages
        .iter()
        .filter_map(|m| m.poll.as_ref().map(|p| p.id))
        .collect();
    if polls.is_empty() {
        return Ok(());
    }
    let found = sqlx::query(
        "SELECT o.poll_id, o.id, o.text, \
         (SELECT COUNT(*) FROM poll_votes v WHERE v.option_id = o.id) AS votes \
         FROM poll_options o WHERE o.poll_id = ANY($1) ORDER BY o.poll_id, o.ord",
    )
    .bind(uuids(&polls))
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
    for poll in messages.iter_mut().filter_map(|m| m.poll.as_mut()) {
        let options = by_poll.remove(&poll.id).unwrap_or_default();
        poll.total_votes = options.iter().map(|o| o.votes).sum();
        poll.options = options;
    }
    Ok(())
}

// ---- messages ----

/// Fills in what [`message_row`] leaves out: mentions, and the options and counts of
/// polls.
pub(super) async fn complete(conn: &mut PgConnection, messages: &mut [Message]) -> StoreResult<()> {
    attach_mentions(conn, messages).await?;
    attach_poll_options(conn, messages).await
}

/// Stores the mentions of `message` in the order given (repeats dropped), in one
/// statement.
pub(super) async fn insert_mentions(
    conn: &mut PgConnection,
    message: MessageId,
    users: &[UserId],
) -> StoreResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO message_mentions (message_id, user_id, ord) \
         SELECT $1, t.user_id, t.ord - 1 FROM unnest($2::UUID[]) WITH ORDINALITY AS t (user_id, ord)",
    )
    .bind(message.get())
    .bind(uuids(&dedup(users)))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Fills `mention_user_ids` of `messages` (in the order they were stored).
async fn attach_mentions(conn: &mut PgConnection, messages: &mut [Message]) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id.get()).collect();
    let found = sqlx::query(
        "SELECT message_id, user_id FROM message_mentions WHERE message_id = ANY($1) \
         ORDER BY message_id, ord",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_message: HashMap<MessageId, Vec<UserId>> = HashMap::new();
    for row in &found {
        by_message
            .entry(id(row, "message_id")?)
            .or_default()
            .push(id(row, "user_id")?);
    }
    for message in messages {
        if let Some(users) = by_message.remove(&message.id) {
            message.mention_user_ids = users;
        }
    }
    Ok(())
}

pub(super) async fn fetch_message(
    conn: &mut PgConnection,
    id: MessageId,
) -> StoreResult<Option<Message>> {
    let row = sqlx::query(AssertSqlSafe(format!("{MESSAGE_SELECT} WHERE m.id = $1")))
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut messages = [message_row(&row)?];
    complete(conn, &mut messages).await?;
    let [message] = messages;
    Ok(Some(message))
}

/// The insert of a message row (its mentions are rows of their own).
fn insert_row(message: &NewMessage) -> Query<'_, Postgres, PgArguments> {
    sqlx::query(
        "INSERT INTO messages (id, channel_id, author_id, content, reply_to, thread_id, \
         mention_everyone, created_at, node_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(message.id.get())
    .bind(message.channel_id.get())
    .bind(message.author_id.get())
    .bind(&message.content)
    .bind(message.reply_to.map(MessageId::get))
    .bind(message.thread_id.map(MessageId::get))
    .bind(message.mention_everyone)
    .bind(message.created_at.as_micros())
    .bind(message.node)
}

/// Inserts a message and its mentions inside the caller's transaction.
pub(super) async fn insert_message(
    conn: &mut PgConnection,
    message: &NewMessage,
) -> StoreResult<()> {
    insert_row(message).execute(&mut *conn).await?;
    insert_mentions(conn, message.id, &message.mention_user_ids).await
}

/// A message as [`insert_message`] stored it.
pub(super) fn created(message: &NewMessage) -> Message {
    Message {
        id: message.id,
        channel_id: message.channel_id,
        author_id: Some(message.author_id),
        content: message.content.clone(),
        reply_to: message.reply_to,
        mention_user_ids: dedup(&message.mention_user_ids),
        mention_everyone: message.mention_everyone,
        thread_id: message.thread_id,
        thread_reply_count: 0,
        edited_at: None,
        deleted: false,
        created_at: message.created_at,
        pinned: false,
        pinned_by: None,
        pinned_at: None,
        poll: None,
        event: None,
    }
}

pub(super) async fn create_message(pool: &PgPool, message: &NewMessage) -> StoreResult<Message> {
    if message.mention_user_ids.is_empty() {
        // The common case is one statement, committed on its own: one round trip
        // instead of three (BEGIN, INSERT, COMMIT).
        insert_row(message).execute(pool).await?;
    } else {
        let mut tx = write_tx(pool).await?;
        insert_message(&mut tx, message).await?;
        tx.commit().await?;
    }
    Ok(created(message))
}

pub(super) async fn message(pool: &PgPool, id: MessageId) -> StoreResult<Option<Message>> {
    let mut tx = read_tx(pool).await?;
    let message = fetch_message(&mut tx, id).await?;
    tx.commit().await?;
    Ok(message)
}

pub(super) async fn messages(
    pool: &PgPool,
    channel: ChannelId,
    before: Option<MessageId>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let limit = limit.max(0);
    let mut tx = read_tx(pool).await?;
    let found = match before {
        None => {
            sqlx::query(AssertSqlSafe(format!(
                "{MESSAGE_SELECT} WHERE m.channel_id = $1 AND m.thread_id IS NULL \
                 AND NOT m.deleted ORDER BY m.created_at DESC, m.id DESC LIMIT $2"
            )))
            .bind(channel.get())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
        }
        Some(cursor) => {
            let anchor =
                sqlx::query("SELECT created_at FROM messages WHERE id = $1 AND channel_id = $2")
                    .bind(cursor.get())
                    .bind(channel.get())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(anchor) = anchor else {
                tx.commit().await?;
                return Ok(Vec::new());
            };
            sqlx::query(AssertSqlSafe(format!(
                "{MESSAGE_SELECT} WHERE m.channel_id = $1 AND m.thread_id IS NULL \
                 AND NOT m.deleted AND (m.created_at, m.id) < ($2, $3) \
                 ORDER BY m.created_at DESC, m.id DESC LIMIT $4"
            )))
            .bind(channel.get())
            .bind(get::<i64>(&anchor, "created_at")?)
            .bind(cursor.get())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
        }
    };
    let mut messages = rows(&found, message_row)?;
    complete(&mut tx, &mut messages).await?;
    tx.commit().await?;
    Ok(messages)
}

pub(super) async fn messages_of_node(
    pool: &PgPool,
    node: uuid::Uuid,
    since: MessageId,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let mut tx = read_tx(pool).await?;
    let found = sqlx::query(AssertSqlSafe(format!(
        "{MESSAGE_SELECT} WHERE m.id >= $1 AND m.node_id = $2 AND NOT m.deleted ORDER BY m.id DESC LIMIT $3"
    )))
    .bind(since.get())
    .bind(node)
    .bind(limit.max(0))
    .fetch_all(&mut *tx)
    .await?;
    let mut messages = rows(&found, message_row)?;
    complete(&mut tx, &mut messages).await?;
    tx.commit().await?;
    Ok(messages)
}

pub(super) async fn edit_message(
    pool: &PgPool,
    id: MessageId,
    content: &str,
    mention_user_ids: &[UserId],
    mention_everyone: bool,
    edited_at: Timestamp,
) -> StoreResult<Option<Message>> {
    let mut tx = write_tx(pool).await?;
    // The UPDATE locks the message row until commit: concurrent edits of one message
    // replace its mentions one after the other.
    let done = sqlx::query(
        "UPDATE messages SET content = $1, mention_everyone = $2, edited_at = $3 \
         WHERE id = $4 AND NOT deleted",
    )
    .bind(content)
    .bind(mention_everyone)
    .bind(edited_at.as_micros())
    .bind(id.get())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query("DELETE FROM message_mentions WHERE message_id = $1")
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
    insert_mentions(&mut tx, id, mention_user_ids).await?;
    let message = fetch_message(&mut tx, id).await?;
    tx.commit().await?;
    Ok(message)
}

pub(super) async fn delete_message(pool: &PgPool, id: MessageId) -> StoreResult<bool> {
    // Concurrent deletes wait on the row and re-check `NOT deleted`: one wins.
    let done = sqlx::query("UPDATE messages SET deleted = TRUE WHERE id = $1 AND NOT deleted")
        .bind(id.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

// ---- read state ----

pub(super) async fn ack_channel(
    pool: &PgPool,
    user: UserId,
    channel: ChannelId,
    at: Timestamp,
) -> StoreResult<()> {
    mark_read(pool, "channels", user, channel.get(), at).await
}

pub(super) async fn ack_dm(
    pool: &PgPool,
    user: UserId,
    channel: DmChannelId,
    at: Timestamp,
) -> StoreResult<()> {
    mark_read(pool, "dm_channels", user, channel.get(), at).await
}

/// Upserts the user's read mark for a channel that must exist in `table` (server
/// and DM channels share `read_states`; their ids never collide).
async fn mark_read(
    pool: &PgPool,
    table: &'static str,
    user: UserId,
    channel: Uuid,
    at: Timestamp,
) -> StoreResult<()> {
    // One statement; the channel row is key-share locked (as a foreign key would) so
    // that a concurrent delete of the channel cannot leave an orphan read mark.
    let done = sqlx::query(AssertSqlSafe(format!(
        "WITH c AS (SELECT id FROM {table} WHERE id = $2 FOR KEY SHARE) \
         INSERT INTO read_states (user_id, channel_id, last_read_at) \
         SELECT $1, c.id, $3 FROM c \
         ON CONFLICT (user_id, channel_id) DO UPDATE SET last_read_at = EXCLUDED.last_read_at"
    )))
    .bind(user.get())
    .bind(channel)
    .bind(at.as_micros())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Unread counts of user `$1`: live messages by others after the read mark, in server
/// channels and DMs with a read state, zeros omitted, by channel. Joined and grouped
/// rather than counted in a subquery per read state: the planner evaluated such a
/// subquery twice per row (once for the count, once for `n > 0`).
pub(super) const UNREAD_COUNTS: &str = "SELECT channel_id, n FROM ( \
       SELECT rs.channel_id AS channel_id, COUNT(*) AS n \
       FROM read_states rs JOIN channels c ON c.id = rs.channel_id \
       JOIN messages m ON m.channel_id = rs.channel_id \
         AND m.created_at > rs.last_read_at AND NOT m.deleted \
         AND m.author_id IS DISTINCT FROM rs.user_id \
       WHERE rs.user_id = $1 GROUP BY rs.channel_id \
       UNION ALL \
       SELECT rs.channel_id AS channel_id, COUNT(*) AS n \
       FROM read_states rs JOIN dm_channels dc ON dc.id = rs.channel_id \
       JOIN dm_messages d ON d.channel_id = rs.channel_id \
         AND d.created_at > rs.last_read_at AND NOT d.deleted \
         AND d.author_id IS DISTINCT FROM rs.user_id \
       WHERE rs.user_id = $1 GROUP BY rs.channel_id \
     ) AS counts ORDER BY channel_id";

pub(super) fn unread_row(row: &PgRow) -> StoreResult<UnreadCount> {
    Ok(UnreadCount {
        channel_id: get(row, "channel_id")?,
        unread_count: get(row, "n")?,
    })
}

/// Mention counts of user `$1` in server channels with a read state, zeros omitted,
/// by channel (joined and grouped, as the unread counts: a subquery per read state
/// took 74 ms for a user in 50 servers, this 2 ms).
pub(super) const MENTION_COUNTS: &str = "SELECT rs.channel_id AS channel_id, COUNT(*) AS n \
       FROM read_states rs JOIN channels c ON c.id = rs.channel_id \
       JOIN messages m ON m.channel_id = rs.channel_id \
         AND m.created_at > rs.last_read_at AND NOT m.deleted \
         AND m.author_id IS DISTINCT FROM rs.user_id \
       WHERE rs.user_id = $1 \
         AND (m.mention_everyone OR EXISTS (SELECT 1 FROM message_mentions mm \
              WHERE mm.message_id = m.id AND mm.user_id = rs.user_id)) \
       GROUP BY rs.channel_id ORDER BY rs.channel_id";

pub(super) fn mention_row(row: &PgRow) -> StoreResult<MentionCount> {
    Ok(MentionCount {
        channel_id: id(row, "channel_id")?,
        count: get(row, "n")?,
    })
}

/// Runs `sql`, whose one parameter is `user`, and decodes its rows with `f`.
pub(super) async fn of_user<T>(
    pool: &PgPool,
    sql: &'static str,
    user: UserId,
    f: fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let found = sqlx::query(sql).bind(user.get()).fetch_all(pool).await?;
    rows(&found, f)
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn ack_channel(
        &self,
        user: UserId,
        channel: ChannelId,
        at: Timestamp,
    ) -> StoreResult<()> {
        ack_channel(&self.pool, user, channel, at).await
    }

    async fn ack_dm(&self, user: UserId, channel: DmChannelId, at: Timestamp) -> StoreResult<()> {
        ack_dm(&self.pool, user, channel, at).await
    }

    async fn unread_counts(&self, user: UserId) -> StoreResult<Vec<UnreadCount>> {
        of_user(&self.pool, UNREAD_COUNTS, user, unread_row).await
    }

    async fn mention_counts(&self, user: UserId) -> StoreResult<Vec<MentionCount>> {
        of_user(&self.pool, MENTION_COUNTS, user, mention_row).await
    }

    async fn create_message(&self, message: &NewMessage) -> StoreResult<Message> {
        create_message(&self.pool, message).await
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        message(&self.pool, id).await
    }

    async fn messages(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messages(&self.pool, channel, before, limit).await
    }

    async fn messages_of_node(
        &self,
        node: uuid::Uuid,
        since: MessageId,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messages_of_node(&self.pool, node, since, limit).await
    }

    async fn edit_message(
        &self,
        id: MessageId,
        content: &str,
        mention_user_ids: &[UserId],
        mention_everyone: bool,
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        edit_message(
            &self.pool,
            id,
            content,
            mention_user_ids,
            mention_everyone,
            edited_at,
        )
        .await
    }

    async fn delete_message(&self, id: MessageId) -> StoreResult<bool> {
        delete_message(&self.pool, id).await
    }
}
