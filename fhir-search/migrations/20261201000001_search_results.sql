-- The query service's own tables, and a notification the read-your-writes wait listens for.

-- Ordered matches of searches with more than one page, so that paging neither skips nor
-- repeats a resource while writes go on. Rows older than an hour are deleted by the query
-- service; a page link to one then answers 410 with a message to search again.
CREATE TABLE search_result (
    id         uuid        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The searched path (`Patient`, empty for a system search) and the parameters as sent.
    path       text        NOT NULL,
    params     jsonb       NOT NULL,
    res_pks    bigint[]    NOT NULL,
    -- NULL when the matches were not counted (more than the kept list, _total=none|estimate).
    total      bigint
);
CREATE INDEX search_result_created ON search_result (created_at);

-- As before, plus a notification on `projection_checkpoint` whenever the checkpoint moves, so a
-- search waiting for its client's last write wakes when the projections reach it.
CREATE OR REPLACE FUNCTION projection_advance_checkpoint(checkpoint_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    current_position bigint;
    run_end bigint;
BEGIN
    SELECT position INTO current_position FROM projection_checkpoint
        WHERE name = checkpoint_name FOR UPDATE;
    SELECT max(position) INTO run_end FROM (
        SELECT position, row_number() OVER (ORDER BY position) AS rank
        FROM projection_applied WHERE position > current_position
    ) applied
    WHERE position - current_position = rank;
    IF run_end IS NOT NULL THEN
        UPDATE projection_checkpoint SET position = run_end, updated_at = now()
            WHERE name = checkpoint_name;
        current_position := run_end;
        PERFORM pg_notify('projection_checkpoint', checkpoint_name || ':' || run_end);
    END IF;
    DELETE FROM projection_applied WHERE position <= current_position;
    RETURN current_position;
END;
$$;
