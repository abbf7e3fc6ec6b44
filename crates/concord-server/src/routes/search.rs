//! Message search (`rest-extras.md` §7): `GET /servers/{id}/search`.
//!
//! Concord's departures from the reference: only the channels the caller may VIEW are
//! searched, for the hits and for `total` alike (X8); `before` pages on the keyset
//! (rank, `created_at`, `id`) of the cursor message (X7); and `highlight` is the
//! HTML-escaped text with only the `<mark>` tags added here (X6).

use std::ops::Range;

use axum::extract::State;
use concord_protocol::{ErrorBody, SearchHit, SearchPage, SearchQuery, ServerId};
use concord_store::{MessageHit, MessageSearch};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    error::{ApiError, ApiResult},
    extract::{Path, Query},
    state::AppState,
};

/// Hits per page when `limit` is absent.
const DEFAULT_LIMIT: i64 = 50;
/// The allowed page sizes.
const LIMITS: std::ops::RangeInclusive<i64> = 1..=100;
/// The allowed query lengths, in characters.
const QUERY_CHARS: std::ops::RangeInclusive<usize> = 2..=200;

/// The most words of a highlight (`ts_headline`'s default `MaxWords`); a longer text
/// is cut to this many around its first match.
const HIGHLIGHT_WORDS: usize = 35;
/// Words kept before the first match when a text is cut.
const HIGHLIGHT_LEAD: usize = 10;

/// The search route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

#[utoipa::path(
    get,
    path = "/servers/{id}/search",
    tag = "servers",
    description = "Full-text search of the live messages of the server's channels that \
                   the caller may view, best match first. Page with the last hit's id \
                   (`next_cursor`) as `before`.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server."), SearchQuery),
    responses(
        (status = 200, description = "A page of hits.", body = SearchPage),
        (status = 400, description = "A query parameter is missing or does not parse, \
                                      `q` is not 2 to 200 characters or `limit` not 1 \
                                      to 100.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<SearchPage>> {
    if !QUERY_CHARS.contains(&query.q.chars().count()) {
        return Err(ApiError::bad_request("q: Query must be 2–200 characters"));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !LIMITS.contains(&limit) {
        return Err(ApiError::bad_request("limit: Limit must be 1–100"));
    }
    let user = principal.id();
    access::server_member(&state, server, user)?;
    let channels = state
        .directory
        .channels_of(server)
        .into_iter()
        .filter(|&channel| access::can_view(&state, channel, user))
        .collect();
    let found = state
        .store
        .search_messages(&MessageSearch {
            text: query.q,
            channels,
            channel: query.channel_id,
            before: query.before,
            limit,
        })
        .await?;
    let next_cursor = found
        .has_more
        .then(|| found.hits.last().map(|hit| hit.id))
        .flatten();
    Ok(axum::Json(SearchPage {
        results: found.hits.into_iter().map(hit).collect(),
        total: found.total,
        has_more: found.has_more,
        next_cursor,
    }))
}

fn hit(found: MessageHit) -> SearchHit {
    SearchHit {
        highlight: highlight(&found.content, &found.matches),
        id: found.id,
        channel_id: found.channel_id,
        author_id: found.author_id,
        author_username: found.author_username,
        content: found.content,
        created_at: found.created_at,
        rank: found.rank,
    }
}

/// `content` as HTML: every character escaped, each of `matches` (byte ranges, in
/// order, disjoint) wrapped in `<mark>`…`</mark>`, and a text of more than
/// [`HIGHLIGHT_WORDS`] words cut to that many, starting up to [`HIGHLIGHT_LEAD`]
/// words before the first match.
fn highlight(content: &str, matches: &[Range<usize>]) -> String {
    let words = word_spans(content);
    let window = if words.len() <= HIGHLIGHT_WORDS {
        0..content.len()
    } else {
        let first = matches.first().map_or(0, |m| m.start);
        let at = words.iter().position(|w| w.end > first).unwrap_or(0);
        let start = at
            .saturating_sub(HIGHLIGHT_LEAD)
            .min(words.len() - HIGHLIGHT_WORDS);
        words[start].start..words[start + HIGHLIGHT_WORDS - 1].end
    };
    let mut out = String::with_capacity(window.len() + 16);
    let mut at = window.start;
    for found in matches {
        let start = found.start.max(window.start);
        let end = found.end.min(window.end);
        if start >= end || start < at {
            continue;
        }
        let (Some(before), Some(marked)) = (content.get(at..start), content.get(start..end)) else {
            continue;
        };
        escape_into(&mut out, before);
        out.push_str("<mark>");
        escape_into(&mut out, marked);
        out.push_str("</mark>");
        at = end;
    }
    escape_into(&mut out, content.get(at..window.end).unwrap_or_default());
    out
}

/// The byte ranges of the whitespace-separated words of `text`.
fn word_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(from)) => {
                spans.push(from..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(from) = start {
        spans.push(from..text.len());
    }
    spans
}

/// Appends `text` with the five HTML-significant characters escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "the matches of one word: one byte range"
)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_escaped_and_only_matches_are_marked() {
        let content = "<script>alert('x')</script> & \"fox\"";
        let at = content.find("fox").unwrap();
        assert_eq!(
            highlight(content, &[at..at + 3]),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;<mark>fox</mark>&quot;"
        );
        assert_eq!(highlight("a <b>", &[]), "a &lt;b&gt;");
        // A match inside markup-looking text is escaped inside the mark.
        let content = "x<mark>y";
        assert_eq!(highlight(content, &[2..6]), "x&lt;<mark>mark</mark>&gt;y");
    }

    #[test]
    fn long_texts_are_cut_around_the_first_match() {
        let words: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let content = words.join(" ");
        let at = content.find("w50").unwrap();
        let out = highlight(&content, &[at..at + 3]);
        let shown: Vec<&str> = out.split(' ').collect();
        assert_eq!(shown.len(), HIGHLIGHT_WORDS);
        assert_eq!(shown[0], "w40");
        assert_eq!(shown[10], "<mark>w50</mark>");
        // Near the end the window slides back to keep its size.
        let at = content.find("w98").unwrap();
        let out = highlight(&content, &[at..at + 3]);
        let shown: Vec<&str> = out.split(' ').collect();
        assert_eq!(shown.len(), HIGHLIGHT_WORDS);
        assert_eq!(shown.last(), Some(&"w99"));
        // Near the start it begins with the text.
        let out = highlight(&content, &[0..2]);
        assert!(out.starts_with("<mark>w0</mark> w1 "), "{out}");
        assert_eq!(out.split(' ').count(), HIGHLIGHT_WORDS);
        // Short texts are shown whole.
        assert_eq!(
            highlight("  one  two ", &[2..5]),
            "  <mark>one</mark>  two "
        );
    }
}
