-- Teaching sandboxes in the index (ADR 0014).
--
-- A sandbox sees the live record as it was at its fork position, except the resources it has
-- written itself, which it sees as it wrote them. The first part is the past the index already
-- keeps (`hfj_res_ver` and the history twins, partition 0). The second is every sandbox run's
-- own versions, in the same tables under the run's partition: `hfj_res_ver` rows with the
-- partition, and index rows in the history twins only (never in the live tables, which hold the
-- live record's current versions and nothing else, so a search of the present pays nothing for
-- sandboxes). A resource written in a sandbox gets a key of its own in `hfj_sandbox_resource`,
-- negative so it can never be a live key: its versions there never collide with the live
-- resource's, and the sandbox's view leaves the live resource out in favour of its own.
--
-- A reset starts a new partition, so nothing needs deleting for the sandbox to be back at its
-- start; the rows of runs no sandbox uses any more are deleted afterwards.
ALTER TABLE hfj_res_ver ADD COLUMN partition bigint NOT NULL DEFAULT 0;
CREATE INDEX hfj_res_ver_sandbox ON hfj_res_ver (partition, res_type)
    WHERE partition <> 0 AND pos_to IS NULL;

CREATE SEQUENCE hfj_sandbox_res_pk INCREMENT BY -1 START WITH -1 MAXVALUE -1;

CREATE TABLE hfj_sandbox_resource (
    partition bigint  NOT NULL,
    res_type  text    NOT NULL,
    res_id    text    NOT NULL,
    res_pk    bigint  NOT NULL DEFAULT nextval('hfj_sandbox_res_pk') UNIQUE,
    res_ver   integer NOT NULL,
    deleted   boolean NOT NULL,
    PRIMARY KEY (partition, res_type, res_id)
);

-- A kept result list of a sandbox search pages through that sandbox run.
ALTER TABLE search_result ADD COLUMN partition bigint;
