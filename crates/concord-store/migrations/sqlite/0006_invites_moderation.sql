-- Server invites, the ban list's order, and Go Live sessions.

-- An invite admits to one server. `uses` only grows, and only inside the transaction
-- that adds the member (or registers the user) it was used for.
CREATE TABLE invites (
    id         BLOB    PRIMARY KEY NOT NULL,
    server_id  BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    code       TEXT    NOT NULL UNIQUE,
    created_by BLOB    REFERENCES users (id) ON DELETE SET NULL,
    max_uses   INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    expires_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX invites_server ON invites (server_id, created_at);

-- Bans are listed newest first per server.
CREATE INDEX bans_server ON bans (server_id, created_at);

-- One broadcaster per voice channel. Kept here, not in a node's memory, so that a
-- session survives a restart and every node sees it. A session is started only while
-- its broadcaster is in the channel (checked in the same transaction), and whatever
-- takes them out of it ends the sessions they no longer attend right after its own
-- write; clearing voice states at start clears these too. A broadcaster is therefore
-- live in at most one channel except for that instant, which is why the column is
-- not UNIQUE: a start racing a move must not fail, and the move ends it.
CREATE TABLE go_live_sessions (
    channel_id     BLOB    PRIMARY KEY NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    broadcaster_id BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    quality        TEXT    NOT NULL CHECK (quality IN ('480p', '720p', '1080p')),
    started_at     INTEGER NOT NULL
);
CREATE INDEX go_live_sessions_broadcaster ON go_live_sessions (broadcaster_id);
