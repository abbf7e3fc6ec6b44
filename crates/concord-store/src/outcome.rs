//! What the invite, Go Live and custom emoji writes answer when they decline: each
//! check that must be atomic with its write is made inside the store's transaction,
//! and the reason it failed comes back as a value, not as an error.

use concord_protocol::{GoLiveInfo, ServerId};

/// Why an invite code cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefusal {
    /// No invite has this code.
    Unknown,
    /// Its expiry has passed.
    Expired,
    /// Every allowed use is spent.
    Exhausted,
}

/// The outcome of accepting an invite ([`crate::InviteStore::accept_invite`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteAcceptance {
    /// The user joined the server; the invite counted one more use.
    Joined(ServerId),
    /// The code cannot be used.
    Refused(InviteRefusal),
    /// The user is banned from the invite's server.
    Banned(ServerId),
    /// The user already belongs to the invite's server.
    AlreadyMember(ServerId),
}

/// The outcome of going live ([`crate::GoLiveStore::start_go_live`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoLiveStart {
    /// The session is stored (new, or the broadcaster's own one replaced).
    Started,
    /// The broadcaster is not in that voice channel.
    NotInChannel,
    /// Someone else is live in that channel.
    Taken(GoLiveInfo),
}

// ---- custom emojis ----

/// The outcome of adding a custom emoji ([`crate::EmojiStore::create_custom_emoji`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmojiCreation {
    /// The emoji is stored.
    Created,
    /// The server already holds as many emojis as allowed; nothing was written.
    LimitReached,
    /// The server already has an emoji of that name; nothing was written.
    NameTaken,
}

// ---- instance admin (issue 18) ----

/// Why an admin's change to a user was not made; each is checked inside the
/// transaction that would make the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRefusal {
    /// The target user does not exist.
    NotFound,
    /// The acting user is no longer an enabled instance admin.
    ActorNotAdmin,
    /// The change would demote, disable or delete the last enabled admin.
    LastAdmin,
    /// The target owns servers (deletion only).
    OwnsServers,
}

// ---- automod (issue 18 part C) ----

/// The outcome of adding a filtered word ([`crate::AutomodStore::add_automod_word`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordAddition {
    /// The word is stored; this is the new row.
    Added(concord_protocol::WordFilter),
    /// The server already filters that word; this is its row, unchanged.
    Existing(concord_protocol::WordFilter),
    /// The server already filters as many words as allowed; nothing was written.
    LimitReached,
}
