-- Refresh-token reuse detection (issue 16, rest.md R15): a session row remembers the
-- token it last rotated away and when, so that the loser of two tabs refreshing at once
-- (the previous token, within seconds of the rotation) is told 401 while any other
-- reuse of a dead token of the session ends the whole session (its "family").
ALTER TABLE refresh_sessions ADD COLUMN previous_hash TEXT;
ALTER TABLE refresh_sessions ADD COLUMN rotated_at INTEGER;
