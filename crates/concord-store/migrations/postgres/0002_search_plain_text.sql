-- Chat messages are plain text, not HTML: PostgreSQL's parser reads `<…>` as tags
-- (skipping all a <script> or <style> holds) and `&…;` as entities, so words inside
-- them were not found. The vector reads those three characters as spaces, as
-- SQLite's tokenizer does; the search statements pass the same text to ts_headline.
DROP INDEX messages_search;
ALTER TABLE messages DROP COLUMN search_vector;
ALTER TABLE messages
    ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('english', translate(content, '<>&', '   '))) STORED;
CREATE INDEX messages_search ON messages USING GIN (search_vector) WHERE NOT deleted;
