-- The event store: the source of truth of every FHIR resource.
--
-- One stream per resource (resource_type, resource_id); version n of the resource is event n
-- of its stream. Events are fat: `resource` is the whole resource after the change (for a
-- delete, the resource as it stood before it, so that consumers can still route the event).
-- `resource`, `patch` and `metadata` are `json`, not `jsonb`: the exact text is kept, because
-- it is what reads return and what the hash chain covers.
--
-- Event rows are never updated. The global position lives in fhir_event_position, and it is
-- NOT a sequence taken at insert time: a bigserial can commit out of order, and a reader that
-- moves past a not-yet-committed value loses that event for good. A writer inserts its events
-- and queues their ids in fhir_event_queue in one statement; after that commits,
-- fhir_sequence_events() numbers every queued event under a lock, so positions become visible
-- strictly in increasing order and a reader of `position > cursor` can never overtake a gap.
-- See docs/adr/0002-event-store.md.
CREATE TABLE fhir_event (
    event_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    version        integer     NOT NULL CHECK (version > 0),
    kind           text        NOT NULL CHECK (kind IN ('ResourceCreated', 'ResourceUpdated', 'ResourceDeleted')),
    resource       json        NOT NULL,
    patch          json,
    metadata       json        NOT NULL,
    transaction_id uuid        NOT NULL,
    recorded_at    timestamptz NOT NULL,
    prev_hash      bytea,
    hash           bytea       NOT NULL,
    -- Optimistic concurrency: two writers of the same version of a stream cannot both commit.
    CONSTRAINT fhir_event_stream_version UNIQUE (resource_type, resource_id, version)
);

-- Committed events waiting for a position (narrow rows: the sequencer's work list).
CREATE TABLE fhir_event_queue (
    event_id bigint PRIMARY KEY
);

-- The global feed: position -> event, dense, in commit order.
CREATE TABLE fhir_event_position (
    position bigint PRIMARY KEY,
    event_id bigint NOT NULL UNIQUE
);

-- How far the outbox relay has published, per JetStream stream.
CREATE TABLE fhir_outbox_cursor (
    stream             text PRIMARY KEY,
    published_position bigint      NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Gives positions to queued (committed) events, in event_id order, and returns the positions
-- of the events asked for (all of them once this returns). With `wanted` NULL it only
-- sequences.
--
-- The advisory lock serialises sequencers; each statement of this VOLATILE function takes a
-- fresh snapshot, so after the lock is granted it sees what the previous holder committed. A
-- caller whose events another sequencer already numbered takes no lock and writes nothing.
-- Positions are dense: they continue from max(position) under the lock, and a rolled-back
-- pass gives nothing away.
CREATE FUNCTION fhir_sequence_events(wanted bigint[]) RETURNS TABLE (event_id bigint, event_position bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    base bigint;
    numbered bigint;
BEGIN
    IF wanted IS NULL OR EXISTS (
        SELECT 1 FROM fhir_event_queue q WHERE q.event_id = ANY (wanted)
    ) THEN
        PERFORM pg_advisory_xact_lock(7345120938475610001);
        SELECT coalesce(max(p.position), 0) INTO base FROM fhir_event_position p;
        WITH taken AS (
            DELETE FROM fhir_event_queue q RETURNING q.event_id
        )
        INSERT INTO fhir_event_position (position, event_id)
        SELECT base + row_number() OVER (ORDER BY t.event_id), t.event_id FROM taken t;
        GET DIAGNOSTICS numbered = ROW_COUNT;
        IF numbered > 0 THEN
            PERFORM pg_notify('fhir_event_sequenced', (base + numbered)::text);
        END IF;
    END IF;
    IF wanted IS NOT NULL THEN
        RETURN QUERY SELECT p.event_id, p.position FROM fhir_event_position p WHERE p.event_id = ANY (wanted);
    END IF;
END
$$;
