//! Message search (`rest-extras.md` §1, §7).

use serde::{Deserialize, Serialize};

use crate::{ChannelId, MessageId, Timestamp, UserId};

/// `?q=&channel_id=&before=&limit=` of `GET /servers/{id}/search`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SearchQuery {
    /// The words to look for (2 to 200 characters): every word that is not an
    /// English stop word must occur, in any inflection (`runs` finds `running`).
    pub q: String,
    /// Only this channel of the server.
    #[serde(default)]
    pub channel_id: Option<ChannelId>,
    /// The previous page's `next_cursor`: only hits that rank after this message.
    #[serde(default)]
    pub before: Option<MessageId>,
    /// Page size, 1 to 100 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// One message that matches a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The message.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its author (null once the account is deleted).
    pub author_id: Option<UserId>,
    /// The author's username (null once the account is deleted).
    pub author_username: Option<String>,
    /// The message text, as posted (not escaped).
    pub content: String,
    /// An HTML excerpt of the text: everything escaped, the matched words wrapped in
    /// `<mark>`…`</mark>`, cut to a window of at most 35 words around the first match.
    pub highlight: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Relevance (higher is better; only comparable within one query).
    pub rank: f64,
}

/// A page of search hits, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchPage {
    /// The hits of this page.
    pub results: Vec<SearchHit>,
    /// How many messages match in all (every page, the caller's channels only).
    pub total: i64,
    /// Whether a further page exists.
    pub has_more: bool,
    /// With `has_more`: the last hit's id, to send as `before` for the next page.
    pub next_cursor: Option<MessageId>,
}
