//! Message search (issue 18 part B) over `messages_fts`, the FTS5 index of the live
//! messages' text (migration 14).
//!
//! The MATCH expression is built here from [`search_terms`]: each word a quoted FTS5
//! string, all of them required, so nothing the user types is read as FTS5 syntax.
//! Relevance is FTS5's `bm25()`, where lower is better; hits are ordered by it, then
//! newest first by (`created_at`, `id`), and a page after a cursor message is a keyset
//! on that triple, with the cursor's own score computed in the same statement (so it
//! compares equal to itself bit for bit).

use std::ops::Range;

use concord_protocol::MessageId;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::SqliteStore;
use super::{dedup, get, id, opt_id, read_tx, ts, write_tx};
use crate::SearchStore;
use crate::{MessageHit, MessageSearch, SearchResults, StoreResult, search_terms};
use async_trait::async_trait;

/// Marks that `highlight()` puts around the matched words. Only their places are
/// used: the HTML is built by the server from the raw text. Tokens never contain
/// them (they are separators to the tokenizer), so they are always next to a word.
const OPEN: char = '\u{2}';
const CLOSE: char = '\u{3}';

/// The live matches of `?1` (a MATCH expression) in the channels of `?2` (a JSON
/// array of hex channel ids), each with its score.
const HITS: &str = "WITH hits AS MATERIALIZED ( \
     SELECT m.rowid AS row, m.id AS id, m.created_at AS created_at, \
     bm25(messages_fts) AS score \
     FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid \
     WHERE messages_fts MATCH ?1 AND m.deleted = 0 \
     AND m.channel_id IN (SELECT unhex(value) FROM json_each(?2)) \
     )";

/// `"term1" AND "term2" …`: every word required, each a literal FTS5 string.
fn match_expression(terms: &[String]) -> String {
    terms
        .iter()
        .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Pending messages indexed per transaction when a search catches up.
const CATCH_UP_BATCH: i64 = 1_000;

/// Indexes the `limit` oldest pending messages (migration 18) in one transaction:
/// the live ones as they read now; deleted ones are just forgotten.
pub(super) async fn flush_search_index(pool: &SqlitePool, limit: i64) -> StoreResult<u64> {
    let limit = limit.max(0);
    // Most calls (the server's once-a-second task on a quiet server) find nothing:
    // a read answers them without taking the write lock.
    let waiting: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM search_pending)")
        .fetch_one(pool)
        .await?;
    if !waiting || limit == 0 {
        return Ok(0);
    }
    let mut tx = write_tx(pool).await?;
    sqlx::query(
        "INSERT INTO messages_fts (rowid, content) \
         SELECT rowid, content FROM messages WHERE deleted = 0 AND rowid IN \
         (SELECT msg_rowid FROM search_pending ORDER BY msg_rowid LIMIT ?1)",
    )
    .bind(limit)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query(
        "DELETE FROM search_pending WHERE msg_rowid IN \
         (SELECT msg_rowid FROM search_pending ORDER BY msg_rowid LIMIT ?1)",
    )
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(done)
}

/// Indexes everything pending, so that a search sees every message written before it.
async fn catch_up(pool: &SqlitePool) -> StoreResult<()> {
    while flush_search_index(pool, CATCH_UP_BATCH).await? == CATCH_UP_BATCH as u64 {}
    Ok(())
}

pub(super) async fn search_messages(
    pool: &SqlitePool,
    search: &MessageSearch,
) -> StoreResult<SearchResults> {
    let nothing = SearchResults {
        hits: Vec::new(),
        has_more: false,
        total: 0,
    };
    let terms = search_terms(&search.text);
    let channels = match search.channel {
        Some(only) if search.channels.contains(&only) => vec![only],
        Some(_) => Vec::new(),
        None => dedup(&search.channels),
    };
    if terms.is_empty() || channels.is_empty() {
        return Ok(nothing);
    }
    let expression = match_expression(&terms);
    let channels = format!(
        "[{}]",
        channels
            .iter()
            .map(|c| format!("\"{}\"", c.get().simple()))
            .collect::<Vec<_>>()
            .join(",")
    );
    let limit = search.limit.max(0);

    catch_up(pool).await?;
    let mut tx = read_tx(pool).await?;
    // The same matches as `HITS`, without the scores.
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid \
         WHERE messages_fts MATCH ?1 AND m.deleted = 0 \
         AND m.channel_id IN (SELECT unhex(value) FROM json_each(?2))",
    )
    .bind(&expression)
    .bind(&channels)
    .fetch_one(&mut *tx)
    .await?;
    let found = sqlx::query(with_hits(
        ", cursor AS (SELECT score, created_at, id FROM hits WHERE id = ?3) \
         SELECT h.row, h.score, m.id, m.channel_id, m.author_id, u.username, m.content, \
         m.created_at \
         FROM hits h JOIN messages m ON m.rowid = h.row \
         LEFT JOIN users u ON u.id = m.author_id \
         WHERE ?3 IS NULL OR EXISTS (SELECT 1 FROM cursor c WHERE h.score > c.score \
           OR (h.score = c.score AND (h.created_at < c.created_at \
             OR (h.created_at = c.created_at AND h.id < c.id)))) \
         ORDER BY h.score, h.created_at DESC, h.id DESC \
         LIMIT ?4",
    ))
    .bind(&expression)
    .bind(&channels)
    .bind(search.before.map(MessageId::get))
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    let has_more = found.len() as i64 > limit;
    let page = &found[..found.len().min(usize::try_from(limit).unwrap_or(0))];

    let rowids: Vec<i64> = page
        .iter()
        .map(|row| get::<i64>(row, "row"))
        .collect::<StoreResult<_>>()?;
    let marked: Vec<(i64, String)> = if rowids.is_empty() {
        Vec::new()
    } else {
        let list = format!(
            "[{}]",
            rowids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        sqlx::query_as(
            "SELECT rowid, highlight(messages_fts, 0, ?2, ?3) FROM messages_fts \
             WHERE messages_fts MATCH ?1 AND rowid IN (SELECT value FROM json_each(?4))",
        )
        .bind(&expression)
        .bind(OPEN.to_string())
        .bind(CLOSE.to_string())
        .bind(list)
        .fetch_all(&mut *tx)
        .await?
    };
    tx.commit().await?;

    let mut hits = Vec::with_capacity(page.len());
    for (row, rowid) in page.iter().zip(&rowids) {
        let mut hit = hit_row(row)?;
        if let Some((_, text)) = marked.iter().find(|(r, _)| r == rowid) {
            hit.matches = marked_ranges(&hit.content, text);
        }
        hits.push(hit);
    }
    Ok(SearchResults {
        hits,
        has_more,
        total,
    })
}

/// [`HITS`] followed by `rest`: one statement.
fn with_hits(rest: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("{HITS} {rest}"))
}

fn hit_row(row: &SqliteRow) -> StoreResult<MessageHit> {
    let score: f64 = get(row, "score")?;
    Ok(MessageHit {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        author_id: opt_id(row, "author_id")?,
        author_username: get(row, "username")?,
        content: get(row, "content")?,
        created_at: ts(row, "created_at")?,
        // bm25 is negative and lower is better; the wire wants higher-is-better.
        rank: -score,
        matches: Vec::new(),
    })
}

/// The byte ranges of `content` between the marks of `marked` (`content` with
/// [`OPEN`]/[`CLOSE`] inserted). None when the text holds a mark character itself
/// (the places would be ambiguous) or `marked` is not `content` with marks added.
fn marked_ranges(content: &str, marked: &str) -> Vec<Range<usize>> {
    if content.contains([OPEN, CLOSE]) {
        return Vec::new();
    }
    let mut ranges = Vec::new();
    let mut at = 0;
    let mut start = None;
    for c in marked.chars() {
        match c {
            OPEN => start = Some(at),
            CLOSE => {
                if let Some(from) = start.take()
                    && from < at
                {
                    ranges.push(from..at);
                }
            }
            other => at += other.len_utf8(),
        }
    }
    let stripped: String = marked
        .chars()
        .filter(|c| ![OPEN, CLOSE].contains(c))
        .collect();
    if stripped != content {
        return Vec::new();
    }
    ranges
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search_messages(&self, query: &MessageSearch) -> StoreResult<SearchResults> {
        search_messages(&self.pool, query).await
    }

    async fn flush_search_index(&self, limit: i64) -> StoreResult<u64> {
        flush_search_index(&self.pool, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_expressions_quote_every_word() {
        let terms = vec!["fox".to_owned(), "jump".to_owned()];
        assert_eq!(match_expression(&terms), "\"fox\" AND \"jump\"");
        assert_eq!(match_expression(&["a\"b".to_owned()]), "\"a\"\"b\"");
    }

    #[test]
    fn marks_become_byte_ranges() {
        let content = "é fox <b>jumps</b>";
        let marked = "é \u{2}fox\u{3} <b>\u{2}jumps\u{3}</b>";
        let ranges = marked_ranges(content, marked);
        assert_eq!(ranges, vec![3..6, 10..15]);
        assert_eq!(&content[ranges[1].clone()], "jumps");
        // A text that holds a mark itself, or a mismatch: no ranges.
        assert!(marked_ranges("a\u{2}fox", "a\u{2}\u{2}fox\u{3}").is_empty());
        assert!(marked_ranges("fox", "\u{2}box\u{3}").is_empty());
    }
}
