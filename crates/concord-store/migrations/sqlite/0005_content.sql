-- Reactions, polls and scheduled events (threads and pins live in `messages` already).
-- Everything here hangs off a message, a channel or a server with ON DELETE CASCADE, so
-- deleting a channel or a server takes it along; deleting a user takes their reactions
-- and votes, and an event's creator becomes NULL.

-- One row per (message, user, emoji). The rowid breaks ties between emojis first used
-- in the same microsecond, so listings keep first-use order.
CREATE TABLE reactions (
    message_id BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT    NOT NULL CHECK (length(CAST(emoji AS BLOB)) BETWEEN 1 AND 64),
    created_at INTEGER NOT NULL,
    UNIQUE (message_id, user_id, emoji)
);
CREATE INDEX reactions_user ON reactions (user_id);

-- A poll belongs to the message that announces it (one poll per message).
CREATE TABLE polls (
    id         BLOB    PRIMARY KEY NOT NULL,
    message_id BLOB    NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    channel_id BLOB    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    question   TEXT    NOT NULL CHECK (length(CAST(question AS BLOB)) <= 500),
    created_at INTEGER NOT NULL
);
CREATE INDEX polls_channel ON polls (channel_id);

-- Options in creation order (`ord`). (id, poll_id) is the target of the votes'
-- reference, so a vote can only name an option of its own poll.
CREATE TABLE poll_options (
    id      BLOB    PRIMARY KEY NOT NULL,
    poll_id BLOB    NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    text    TEXT    NOT NULL CHECK (length(CAST(text AS BLOB)) BETWEEN 1 AND 200),
    ord     INTEGER NOT NULL,
    UNIQUE (poll_id, ord),
    UNIQUE (id, poll_id)
);

-- One vote per user and poll; voting again replaces it.
CREATE TABLE poll_votes (
    poll_id   BLOB    NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    user_id   BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    option_id BLOB    NOT NULL,
    voted_at  INTEGER NOT NULL,
    PRIMARY KEY (poll_id, user_id),
    FOREIGN KEY (option_id, poll_id) REFERENCES poll_options (id, poll_id) ON DELETE CASCADE
);
CREATE INDEX poll_votes_option ON poll_votes (option_id);
CREATE INDEX poll_votes_user ON poll_votes (user_id);

-- A scheduled event, announced by a message in one of the server's channels.
CREATE TABLE server_events (
    id          BLOB    PRIMARY KEY NOT NULL,
    server_id   BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    channel_id  BLOB    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    message_id  BLOB    NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 200),
    description TEXT    CHECK (length(description) <= 2000),
    starts_at   INTEGER NOT NULL,
    created_by  BLOB    REFERENCES users (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX server_events_upcoming ON server_events (server_id, starts_at, id);
CREATE INDEX server_events_channel ON server_events (channel_id);
CREATE INDEX server_events_created_by ON server_events (created_by);
