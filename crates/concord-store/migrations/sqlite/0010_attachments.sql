-- Attachments of server-channel messages (`rest-extras.md` §8, §11). The bytes live in
-- the file store under `<message_id>/<stored_name>`; the original file name is kept
-- only here. `position` keeps the upload order within one batch (a batch shares
-- `created_at`).
--
-- A row goes with its message: by cascade when the message row goes (channel and
-- server deletes), and by the trigger below when the message is soft-deleted
-- (Concord X4). Every deleted row leaves its file's key in `attachment_purges`, in the
-- same transaction, whoever deleted it; the server deletes those files and then the
-- purge rows, so a file outlives its row only until the next purge.
CREATE TABLE attachments (
    id          BLOB    PRIMARY KEY NOT NULL,
    message_id  BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    uploader_id BLOB    REFERENCES users (id) ON DELETE SET NULL,
    filename    TEXT    NOT NULL,
    stored_name TEXT    NOT NULL CHECK (length(stored_name) BETWEEN 1 AND 200),
    file_size   INTEGER NOT NULL CHECK (file_size BETWEEN 1 AND 52428800),
    mime_type   TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (message_id, stored_name)
);
CREATE INDEX attachments_message ON attachments (message_id, created_at, position);

CREATE TABLE attachment_purges (
    seq         INTEGER PRIMARY KEY,
    message_id  BLOB    NOT NULL,
    stored_name TEXT    NOT NULL
);

CREATE TRIGGER attachments_purge AFTER DELETE ON attachments
BEGIN
    INSERT INTO attachment_purges (message_id, stored_name)
    VALUES (OLD.message_id, OLD.stored_name);
END;

CREATE TRIGGER messages_soft_delete_attachments
AFTER UPDATE OF deleted ON messages
WHEN NEW.deleted = 1 AND OLD.deleted = 0
BEGIN
    DELETE FROM attachments WHERE message_id = NEW.id;
END;
