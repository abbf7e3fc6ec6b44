-- Custom emojis of a server (`rest.md` §7.16). The image bytes live in the file store
-- under the emoji's id, not here; whoever deletes a row deletes its file afterwards.
-- A server's emojis go with the server (the server delete collects their ids in the
-- same transaction, for their files), and a user's with the user, as in the reference.
-- The 50-per-server limit is checked in the inserting transaction, not by a trigger.
CREATE TABLE custom_emojis (
    id           BLOB    PRIMARY KEY NOT NULL,
    server_id    BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_by   BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    content_type TEXT    NOT NULL,
    file_size    INTEGER NOT NULL CHECK (file_size > 0),
    created_at   INTEGER NOT NULL,
    UNIQUE (server_id, name)
);
CREATE INDEX custom_emojis_server ON custom_emojis (server_id, created_at);
CREATE INDEX custom_emojis_creator ON custom_emojis (created_by);
