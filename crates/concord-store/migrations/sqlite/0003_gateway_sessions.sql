-- Protocol v2 sessions saved at a graceful shutdown, so that clients can RESUME them
-- after the restart. `state` is the gateway's own serialization (numbering, replay
-- buffer, queued events); the store keeps it opaque. Read and deleted at start.
CREATE TABLE gateway_sessions (
    id         TEXT    PRIMARY KEY NOT NULL,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    state      TEXT    NOT NULL
);
