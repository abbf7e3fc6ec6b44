-- Message search (issue 18 part B, rest-extras.md §7, §11): an FTS5 index of the text
-- of the live server-channel messages, English stemming (porter over unicode61).
--
-- External content: the text is read back from `messages` by rowid, so the index
-- holds only the tokens. `messages` has no INTEGER PRIMARY KEY, so its rowids are
-- stable except under VACUUM, which may renumber them: after a VACUUM, run
-- INSERT INTO messages_fts (messages_fts) VALUES ('delete-all') and then the backfill
-- below ('rebuild' would index the deleted messages too).
--
-- Only live rows are indexed: a soft delete (`deleted` 0 -> 1) takes the row out, an
-- edit replaces its tokens, a hard delete (channel and server cascades) removes them.
-- FTS5 must be told the old text of a row it indexed to remove it, and only such a
-- row: each trigger acts exactly when the row was (or becomes) live.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);

INSERT INTO messages_fts (rowid, content)
SELECT rowid, content FROM messages WHERE deleted = 0;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN NEW.deleted = 0
BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (NEW.rowid, NEW.content);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN OLD.deleted = 0
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    VALUES ('delete', OLD.rowid, OLD.content);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, deleted ON messages
WHEN OLD.deleted = 0 OR NEW.deleted = 0
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    SELECT 'delete', OLD.rowid, OLD.content WHERE OLD.deleted = 0;
    INSERT INTO messages_fts (rowid, content)
    SELECT NEW.rowid, NEW.content WHERE NEW.deleted = 0;
END;
