//! Server channel messages, their mentions, and read state.

use std::collections::HashMap;

use concord_protocol::{
    ChannelId, DmChannelId, MentionCount, Message, MessageId, Timestamp, UnreadCount, UserId,
};
use sqlx::{
    AssertSqlSafe, Sqlite, SqliteConnection,
    query::Query,
    sqlite::{SqliteArguments, SqlitePool, SqliteRow},
};

use super::{
    IN_CHUNK, content, dedup, get, id, opt_id, opt_ts, placeholders, read_tx, rows, ts, write_tx,
};
use super::{SqliteStore, of_user};
use crate::MessageStore;
use crate::{NewMessage, StoreError, StoreResult};
use async_trait::async_trait;
use uuid::Uuid;

/// A message row with its live thread reply count, its poll's question and its
/// scheduled event, as [`message_row`] reads it (alias `m`).
pub(super) const MESSAGE_SELECT: &str = "SELECT m.id, m.channel_id, m.author_id, m.content, \
    m.reply_to, m.thread_id, m.mention_everyone, m.edited_at, m.deleted, m.pinned, \
    m.pinned_by, m.pinned_at, m.created_at, \
    (SELECT COUNT(*) FROM messages r WHERE r.thread_id = m.id AND r.deleted = 0) \
    AS thread_reply_count, \
    p.id AS poll_id, p.question AS poll_question, \
    e.id AS event_id, e.name AS event_name, e.description AS event_description, \
    e.starts_at AS event_starts_at, e.created_by AS event_created_by, \
    e.created_at AS event_created_at \
    FROM messages m \
    LEFT JOIN polls p ON p.message_id = m.id \
    LEFT JOIN server_events e ON e.message_id = m.id";

/// A message row without its mentions and poll options (filled in by [`complete`]).
pub(super) fn message_row(row: &SqliteRow) -> StoreResult<Message> {
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
        poll: content::poll_stub(row)?,
        event: content::event_of_row(row)?,
    })
}

/// Fills in what [`message_row`] leaves out: mentions, and the options and counts of
/// polls.
pub(super) async fn complete(
    conn: &mut SqliteConnection,
    messages: &mut [Message],
) -> StoreResult<()> {
    attach_mentions(conn, messages).await?;
    content::attach_poll_options(conn, messages).await
}

pub(super) async fn insert_mentions(
    conn: &mut SqliteConnection,
    message: MessageId,
    users: &[UserId],
) -> StoreResult<()> {
    for (ord, user) in dedup(users).into_iter().enumerate() {
        sqlx::query("INSERT INTO message_mentions (message_id, user_id, ord) VALUES (?, ?, ?)")
            .bind(message.get())
            .bind(user.get())
            .bind(i64::try_from(ord).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Fills `mention_user_ids` of `messages` (in the order they were stored).
async fn attach_mentions(conn: &mut SqliteConnection, messages: &mut [Message]) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut by_message: HashMap<MessageId, Vec<UserId>> = HashMap::new();
    for chunk in messages.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT message_id, user_id FROM message_mentions WHERE message_id IN ({}) \
             ORDER BY message_id, ord",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for message in chunk {
            query = query.bind(message.id.get());
        }
        for row in query.fetch_all(&mut *conn).await? {
            by_message
                .entry(id(&row, "message_id")?)
                .or_default()
                .push(id(&row, "user_id")?);
        }
    }
    for message in messages {
        if let Some(users) = by_message.remove(&message.id) {
            message.mention_user_ids = users;
        }
    }
    Ok(())
}

pub(super) async fn fetch_message(
    conn: &mut SqliteConnection,
    id: MessageId,
) -> StoreResult<Option<Message>> {
    let row = sqlx::query(AssertSqlSafe(format!("{MESSAGE_SELECT} WHERE m.id = ?")))
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
fn insert_row(message: &NewMessage) -> Query<'static, Sqlite, SqliteArguments> {
    sqlx::query(
        "INSERT INTO messages (id, channel_id, author_id, content, reply_to, thread_id, \
         mention_everyone, created_at, node_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    conn: &mut SqliteConnection,
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

pub(super) async fn create_message(
    pool: &SqlitePool,
    message: &NewMessage,
) -> StoreResult<Message> {
    if message.mention_user_ids.is_empty() {
        // The common case is one statement, committed on its own: one trip to the
        // database thread instead of three (BEGIN, INSERT, COMMIT).
        insert_row(message).execute(pool).await?;
    } else {
        let mut tx = write_tx(pool).await?;
        insert_message(&mut tx, message).await?;
        tx.commit().await?;
    }
    Ok(created(message))
}

pub(super) async fn message(pool: &SqlitePool, id: MessageId) -> StoreResult<Option<Message>> {
    let mut tx = read_tx(pool).await?;
    let message = fetch_message(&mut tx, id).await?;
    tx.commit().await?;
    Ok(message)
}

pub(super) async fn messages(
    pool: &SqlitePool,
    channel: ChannelId,
    before: Option<MessageId>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let limit = limit.max(0);
    let mut tx = read_tx(pool).await?;
    let found =
        match before {
            None => sqlx::query(AssertSqlSafe(format!(
                "{MESSAGE_SELECT} WHERE m.channel_id = ? AND m.thread_id IS NULL AND m.deleted = 0 \
                 ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
            )))
            .bind(channel.get())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?,
            Some(cursor) => {
                let anchor =
                    sqlx::query("SELECT created_at FROM messages WHERE id = ? AND channel_id = ?")
                        .bind(cursor.get())
                        .bind(channel.get())
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(anchor) = anchor else {
                    tx.commit().await?;
                    return Ok(Vec::new());
                };
                sqlx::query(AssertSqlSafe(format!(
                "{MESSAGE_SELECT} WHERE m.channel_id = ? AND m.thread_id IS NULL AND m.deleted = 0 \
                 AND (m.created_at, m.id) < (?, ?) \
                 ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
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
    pool: &SqlitePool,
    node: uuid::Uuid,
    since: MessageId,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let mut tx = read_tx(pool).await?;
    let found = sqlx::query(AssertSqlSafe(format!(
        "{MESSAGE_SELECT} WHERE m.id >= ? AND m.node_id = ? AND m.deleted = 0 ORDER BY m.id DESC LIMIT ?"
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
    pool: &SqlitePool,
    id: MessageId,
    content: &str,
    mention_user_ids: &[UserId],
    mention_everyone: bool,
    edited_at: Timestamp,
) -> StoreResult<Option<Message>> {
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query(
        "UPDATE messages SET content = ?, mention_everyone = ?, edited_at = ? \
         WHERE id = ? AND deleted = 0",
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
    sqlx::query("DELETE FROM message_mentions WHERE message_id = ?")
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
    insert_mentions(&mut tx, id, mention_user_ids).await?;
    let message = fetch_message(&mut tx, id).await?;
    tx.commit().await?;
    Ok(message)
}

pub(super) async fn delete_message(pool: &SqlitePool, id: MessageId) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE messages SET deleted = 1 WHERE id = ? AND deleted = 0")
        .bind(id.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

// ---- read state ----

pub(super) async fn ack_channel(
    pool: &SqlitePool,
    user: UserId,
    channel: ChannelId,
    at: Timestamp,
) -> StoreResult<()> {
    mark_read(pool, "channels", user, channel.get(), at).await
}

pub(super) async fn ack_dm(
    pool: &SqlitePool,
    user: UserId,
    channel: DmChannelId,
    at: Timestamp,
) -> StoreResult<()> {
    mark_read(pool, "dm_channels", user, channel.get(), at).await
}

/// Upserts the user's read mark for a channel that must exist in `table` (server
/// and DM channels share `read_states`; their ids never collide).
async fn mark_read(
    pool: &SqlitePool,
    table: &'static str,
    user: UserId,
    channel: Uuid,
    at: Timestamp,
) -> StoreResult<()> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO read_states (user_id, channel_id, last_read_at) \
         SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM {table} WHERE id = ?2) \
         ON CONFLICT (user_id, channel_id) DO UPDATE SET last_read_at = excluded.last_read_at"
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

/// Unread counts of user `?1` (server and DM channels with a read state), zeros
/// omitted, by channel.
pub(super) const UNREAD_COUNTS: &str = "SELECT channel_id, n FROM ( \
       SELECT rs.channel_id AS channel_id, \
         (SELECT COUNT(*) FROM messages m WHERE m.channel_id = rs.channel_id \
            AND m.created_at > rs.last_read_at AND m.deleted = 0 \
            AND m.author_id IS NOT rs.user_id) AS n \
       FROM read_states rs JOIN channels c ON c.id = rs.channel_id \
       WHERE rs.user_id = ?1 \
       UNION ALL \
       SELECT rs.channel_id AS channel_id, \
         (SELECT COUNT(*) FROM dm_messages d WHERE d.channel_id = rs.channel_id \
            AND d.created_at > rs.last_read_at AND d.deleted = 0 \
            AND d.author_id IS NOT rs.user_id) AS n \
       FROM read_states rs JOIN dm_channels dc ON dc.id = rs.channel_id \
       WHERE rs.user_id = ?1 \
     ) WHERE n > 0 ORDER BY channel_id";

pub(super) fn unread_row(row: &SqliteRow) -> StoreResult<UnreadCount> {
    Ok(UnreadCount {
        channel_id: get(row, "channel_id")?,
        unread_count: get(row, "n")?,
    })
}

/// Mention counts of user `?1` in server channels with a read state, zeros omitted,
/// by channel.
pub(super) const MENTION_COUNTS: &str = "SELECT channel_id, n FROM ( \
       SELECT rs.channel_id AS channel_id, \
         (SELECT COUNT(*) FROM messages m WHERE m.channel_id = rs.channel_id \
            AND m.created_at > rs.last_read_at AND m.deleted = 0 \
            AND m.author_id IS NOT rs.user_id \
            AND (m.mention_everyone = 1 OR EXISTS (SELECT 1 FROM message_mentions mm \
                 WHERE mm.message_id = m.id AND mm.user_id = rs.user_id))) AS n \
       FROM read_states rs JOIN channels c ON c.id = rs.channel_id \
       WHERE rs.user_id = ?1 \
     ) WHERE n > 0 ORDER BY channel_id";

pub(super) fn mention_row(row: &SqliteRow) -> StoreResult<MentionCount> {
    Ok(MentionCount {
        channel_id: id(row, "channel_id")?,
        count: get(row, "n")?,
    })
}

#[async_trait]
impl MessageStore for SqliteStore {
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
