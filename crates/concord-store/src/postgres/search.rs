//! Message search (issue 18 part B) over `messages.search_vector`, the generated
//! `to_tsvector('english', translate(content, '<>&', '   '))` of each message (chat
//! text is not HTML: see migration 0002), with a GIN index on the live ones.
//!
//! The query is `plainto_tsquery('english', …)` of the words [`search_terms`] keeps,
//! joined by spaces: every word required, each stemmed as the vector's words are, and
//! nothing the user types read as tsquery syntax. Relevance is `ts_rank`, where higher
//! is better; hits are ordered by it, then newest first by (`created_at`, `id`), and a
//! page after a cursor message is a keyset on that triple, with the cursor's own score
//! computed in the same statement (so it compares equal to itself bit for bit).
//!
//! The vector is a generated column, written with the message in its own transaction:
//! there is no index to catch up, and [`flush_search_index`] has nothing to do.

use std::ops::Range;

use concord_protocol::MessageId;
use sqlx::{
    AssertSqlSafe,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{get, id, opt_id, read_tx, ts, uuids};
use crate::SearchStore;
use crate::{MessageHit, MessageSearch, SearchResults, StoreResult, search_terms};
use async_trait::async_trait;

/// Marks that `ts_headline()` puts around the matched words. Only their places are
/// used: the HTML is built by the server from the raw text. The parser never puts
/// them inside a word, so they are always next to one.
const OPEN: char = '\u{2}';
const CLOSE: char = '\u{3}';

/// The live matches of `$1` (the words, for `plainto_tsquery`) in the channels of `$2`
/// (a `UUID[]`), each with its score.
const HITS: &str = "WITH hits AS MATERIALIZED ( \
     SELECT m.id AS id, m.created_at AS created_at, \
     ts_rank(m.search_vector, plainto_tsquery('english', $1)) AS score \
     FROM messages m \
     WHERE m.search_vector @@ plainto_tsquery('english', $1) AND NOT m.deleted \
     AND m.channel_id = ANY($2) \
     )";

/// Characters the parser would read as HTML markup, read as spaces instead (the
/// `translate` of migration 0002 and of the headline below).
const MARKUP: [char; 3] = ['<', '>', '&'];

/// The `ts_headline` options that mark every match in the whole text.
fn headline_options() -> String {
    format!("HighlightAll=true, StartSel=\"{OPEN}\", StopSel=\"{CLOSE}\"")
}

/// The whole index is current with every committed write: nothing waits.
pub(super) async fn flush_search_index(_pool: &PgPool, _limit: i64) -> StoreResult<u64> {
    Ok(0)
}

pub(super) async fn search_messages(
    pool: &PgPool,
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
        None => search.channels.clone(),
    };
    if terms.is_empty() || channels.is_empty() {
        return Ok(nothing);
    }
    let words = terms.join(" ");
    let channels = uuids(&channels);
    let limit = search.limit.max(0);

    // One snapshot for the count and the page.
    let mut tx = read_tx(pool).await?;
    // The same matches as `HITS`, without the scores.
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages m \
         WHERE m.search_vector @@ plainto_tsquery('english', $1) AND NOT m.deleted \
         AND m.channel_id = ANY($2)",
    )
    .bind(&words)
    .bind(&channels)
    .fetch_one(&mut *tx)
    .await?;
    let found = sqlx::query(with_hits(
        ", cursor AS (SELECT score, created_at, id FROM hits WHERE id = $3) \
         SELECT h.score::FLOAT8 AS score, m.id, m.channel_id, m.author_id, u.username, \
         m.content, m.created_at, \
         ts_headline('english', translate(m.content, '<>&', '   '), \
           plainto_tsquery('english', $1), $5) AS marked \
         FROM hits h JOIN messages m ON m.id = h.id \
         LEFT JOIN users u ON u.id = m.author_id \
         WHERE $3::UUID IS NULL OR EXISTS (SELECT 1 FROM cursor c WHERE h.score < c.score \
           OR (h.score = c.score AND (h.created_at, h.id) < (c.created_at, c.id))) \
         ORDER BY h.score DESC, h.created_at DESC, h.id DESC \
         LIMIT $4",
    ))
    .bind(&words)
    .bind(&channels)
    .bind(search.before.map(MessageId::get))
    .bind(limit + 1)
    .bind(headline_options())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let has_more = found.len() as i64 > limit;
    let page = &found[..found.len().min(usize::try_from(limit).unwrap_or(0))];
    let hits = page.iter().map(hit_row).collect::<StoreResult<_>>()?;
    Ok(SearchResults {
        hits,
        has_more,
        total,
    })
}

/// [`HITS`] followed by `rest`: one statement.
fn with_hits(rest: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("{HITS} {rest}"))
}

fn hit_row(row: &PgRow) -> StoreResult<MessageHit> {
    let content: String = get(row, "content")?;
    let marked: String = get(row, "marked")?;
    Ok(MessageHit {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        author_id: opt_id(row, "author_id")?,
        author_username: get(row, "username")?,
        matches: marked_ranges(&content, &marked),
        content,
        created_at: ts(row, "created_at")?,
        // ts_rank is positive and higher is better, as the wire wants.
        rank: get(row, "score")?,
    })
}

/// The byte ranges of `content` between the marks of `marked` (`content` with
/// [`MARKUP`] read as spaces and [`OPEN`]/[`CLOSE`] inserted: one byte for one, so
/// the places are the same). None when the text holds a mark character itself (the
/// places would be ambiguous) or `marked` is not such a copy of `content`.
fn marked_ranges(content: &str, marked: &str) -> Vec<Range<usize>> {
    if content.contains([OPEN, CLOSE]) {
        return Vec::new();
    }
    let mut plain = String::with_capacity(content.len());
    let mut ranges = Vec::new();
    let mut open_at = None;
    for c in marked.chars() {
        if c == OPEN {
            open_at = Some(plain.len());
        } else if c == CLOSE {
            match open_at.take() {
                Some(from) if from < plain.len() => ranges.push(from..plain.len()),
                _ => {}
            }
        } else {
            plain.push(c);
        }
    }
    let same = plain.len() == content.len()
        && plain
            .chars()
            .zip(content.chars())
            .all(|(p, c)| p == c || (p == ' ' && MARKUP.contains(&c)));
    if same { ranges } else { Vec::new() }
}

#[async_trait]
impl SearchStore for PostgresStore {
    async fn search_messages(&self, search: &MessageSearch) -> StoreResult<SearchResults> {
        search_messages(&self.pool, search).await
    }

    async fn flush_search_index(&self, limit: i64) -> StoreResult<u64> {
        flush_search_index(&self.pool, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_become_byte_ranges() {
        let content = "é fox <b>jumps</b>";
        let marked = "é \u{2}fox\u{3}  b \u{2}jumps\u{3} /b ";
        let ranges = marked_ranges(content, marked);
        assert_eq!(ranges, vec![3..6, 10..15]);
        assert_eq!(&content[ranges[1].clone()], "jumps");
        // A text that holds a mark itself, or a mismatch: no ranges.
        assert!(marked_ranges("a\u{2}fox", "a\u{2}\u{2}fox\u{3}").is_empty());
        assert!(marked_ranges("fox", "\u{2}box\u{3}").is_empty());
    }
}
