-- Audit log (issue 18 part C, rest-extras.md §5.2, §11): one row per audited action,
-- written in the same transaction as the action (X19). A deleted server or actor
-- leaves the row with the reference set to NULL.
CREATE TABLE audit_logs (
    id          BLOB    PRIMARY KEY NOT NULL,
    server_id   BLOB    REFERENCES servers (id) ON DELETE SET NULL,
    actor_id    BLOB    REFERENCES users (id) ON DELETE SET NULL,
    action      TEXT    NOT NULL,
    target_type TEXT,
    target_id   BLOB,
    -- A JSON object, as text.
    details     TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
);
-- Keyset pages of one server, newest first, with or without the filters.
CREATE INDEX audit_logs_server_time ON audit_logs (server_id, created_at, id);
CREATE INDEX audit_logs_server_action_time ON audit_logs (server_id, action, created_at, id);
CREATE INDEX audit_logs_actor_time ON audit_logs (actor_id, created_at);
