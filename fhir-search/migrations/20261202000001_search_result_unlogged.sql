-- Kept result lists are a cache of search results, written on every search with more than one
-- page: as a logged table each of those searches waited for a WAL flush. Unlogged, they skip
-- the WAL. After a crash Postgres empties the table, and a page link of a list written before
-- it answers 410 with a message to search again, as one older than an hour does.
ALTER TABLE search_result SET UNLOGGED;
