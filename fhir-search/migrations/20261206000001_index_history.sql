-- The index as it was at every position: the past as a FHIR base (`/fhir/_asof/<position>`)
-- and the copy-on-write sandboxes forked from it are answered from these tables, never by
-- replaying events (ADR 0013).
--
-- `hfj_res_ver` holds one row per version of every resource, with the positions over which that
-- version was the current one: from the position of its event (`pos_from`) to that of the next
-- version's (`pos_to`, NULL while it is current). A resource at position p is its version with
-- pos_from <= p < pos_to. The projector recomputes `pos_to` from the versions it knows, so a
-- version projected late (a redelivered batch) takes its place between the others.
--
-- Index rows carry the version they describe (`res_ver`). The live tables keep the current
-- version's rows only, as before, so a search of the present pays nothing for the past; when a
-- newer version replaces them, the old rows move to the table's `_hist` twin (same columns,
-- same indexes, plus `(res_pk, res_ver)`), and a version that is already superseded when it is
-- projected goes straight there. A search of the past reads a table and its twin together and
-- matches each row to the version of its resource current at that position.
CREATE TABLE hfj_res_ver (
    res_pk       bigint      NOT NULL,
    res_ver      integer     NOT NULL,
    res_type     text        NOT NULL,
    res_id       text        NOT NULL,
    pos_from     bigint      NOT NULL,
    pos_to       bigint,
    last_updated timestamptz NOT NULL,
    deleted      boolean     NOT NULL,
    PRIMARY KEY (res_pk, res_ver)
);
-- A search of the past starts from the versions of a type, or from a reference's target.
CREATE INDEX hfj_res_ver_type ON hfj_res_ver (res_type, pos_from);
CREATE INDEX hfj_res_ver_id ON hfj_res_ver (res_type, res_id, pos_from);
CREATE STATISTICS hfj_res_ver_kind (mcv) ON res_type, deleted FROM hfj_res_ver;

-- The versions projected before this migration: their own rows only, since earlier versions'
-- index rows were not kept. `hfj_history_horizon` says from which position the past is
-- complete; a projection rebuild replays every version and sets it to 0.
INSERT INTO hfj_res_ver (res_pk, res_ver, res_type, res_id, pos_from, pos_to, last_updated, deleted)
SELECT res_pk, res_ver, res_type, res_id, position, NULL, last_updated, deleted FROM hfj_resource;

CREATE TABLE hfj_history_horizon (
    position bigint NOT NULL
);
INSERT INTO hfj_history_horizon (position)
SELECT CASE WHEN count(*) = 0 THEN 0 ELSE max(position) END FROM hfj_resource;

ALTER TABLE hfj_spidx_string ADD COLUMN res_ver integer;
ALTER TABLE hfj_spidx_token ADD COLUMN res_ver integer;
ALTER TABLE hfj_spidx_date ADD COLUMN res_ver integer;
ALTER TABLE hfj_spidx_number ADD COLUMN res_ver integer;
ALTER TABLE hfj_spidx_quantity ADD COLUMN res_ver integer;
ALTER TABLE hfj_spidx_uri ADD COLUMN res_ver integer;
ALTER TABLE hfj_spidx_coords ADD COLUMN res_ver integer;
ALTER TABLE hfj_res_link ADD COLUMN res_ver integer;
ALTER TABLE hfj_res_tag ADD COLUMN res_ver integer;
ALTER TABLE hfj_res_text ADD COLUMN res_ver integer;

DO $$
DECLARE
    versioned text;
BEGIN
    FOREACH versioned IN ARRAY ARRAY['hfj_spidx_string', 'hfj_spidx_token', 'hfj_spidx_date',
        'hfj_spidx_number', 'hfj_spidx_quantity', 'hfj_spidx_uri', 'hfj_spidx_coords',
        'hfj_res_link', 'hfj_res_tag', 'hfj_res_text']
    LOOP
        EXECUTE format('UPDATE %I i SET res_ver = r.res_ver FROM hfj_resource r WHERE r.res_pk = i.res_pk',
            versioned);
        EXECUTE format('ALTER TABLE %I ALTER COLUMN res_ver SET NOT NULL', versioned);
    END LOOP;
END
$$;

-- The twins. `hfj_res_text` is keyed by `res_pk`, so its twin gets its indexes one by one.
CREATE TABLE hfj_spidx_string_hist (LIKE hfj_spidx_string INCLUDING ALL);
CREATE TABLE hfj_spidx_token_hist (LIKE hfj_spidx_token INCLUDING ALL);
CREATE TABLE hfj_spidx_date_hist (LIKE hfj_spidx_date INCLUDING ALL);
CREATE TABLE hfj_spidx_number_hist (LIKE hfj_spidx_number INCLUDING ALL);
CREATE TABLE hfj_spidx_quantity_hist (LIKE hfj_spidx_quantity INCLUDING ALL);
CREATE TABLE hfj_spidx_uri_hist (LIKE hfj_spidx_uri INCLUDING ALL);
CREATE TABLE hfj_spidx_coords_hist (LIKE hfj_spidx_coords INCLUDING ALL);
CREATE TABLE hfj_res_link_hist (LIKE hfj_res_link INCLUDING ALL);
CREATE TABLE hfj_res_tag_hist (LIKE hfj_res_tag INCLUDING ALL);
CREATE TABLE hfj_res_text_hist (LIKE hfj_res_text INCLUDING DEFAULTS INCLUDING STATISTICS);
ALTER TABLE hfj_res_text_hist ADD PRIMARY KEY (res_pk, res_ver);
CREATE INDEX hfj_res_text_hist_narrative ON hfj_res_text_hist USING gin (narrative);
CREATE INDEX hfj_res_text_hist_content ON hfj_res_text_hist USING gin (content);

CREATE INDEX hfj_spidx_string_hist_version ON hfj_spidx_string_hist (res_pk, res_ver);
CREATE INDEX hfj_spidx_token_hist_version ON hfj_spidx_token_hist (res_pk, res_ver);
CREATE INDEX hfj_spidx_date_hist_version ON hfj_spidx_date_hist (res_pk, res_ver);
CREATE INDEX hfj_spidx_number_hist_version ON hfj_spidx_number_hist (res_pk, res_ver);
CREATE INDEX hfj_spidx_quantity_hist_version ON hfj_spidx_quantity_hist (res_pk, res_ver);
CREATE INDEX hfj_spidx_uri_hist_version ON hfj_spidx_uri_hist (res_pk, res_ver);
CREATE INDEX hfj_spidx_coords_hist_version ON hfj_spidx_coords_hist (res_pk, res_ver);
CREATE INDEX hfj_res_link_hist_version ON hfj_res_link_hist (res_pk, res_ver);
CREATE INDEX hfj_res_tag_hist_version ON hfj_res_tag_hist (res_pk, res_ver);

-- A kept result list of a search of the past pages through that past: it records the position.
ALTER TABLE search_result ADD COLUMN asof bigint;
