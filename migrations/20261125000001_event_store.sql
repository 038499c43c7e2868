-- The event store: the source of truth of every FHIR resource.
--
-- One stream per resource (resource_type, resource_id); version n of the resource is event n
-- of its stream. Events are fat: `resource` is the whole resource after the change (for a
-- delete, the resource as it stood before it, so that consumers can still route the event).
-- `resource`, `patch` and `metadata` are `json`, not `jsonb`: the exact text is kept, because
-- it is what reads return and what the hash chain covers.
--
-- The global `position` is NOT a sequence taken at insert time: a bigserial can commit out of
-- order, and a reader that moves past a not-yet-committed value loses that event for good.
-- Events are inserted with position NULL; after their transaction commits,
-- fhir_sequence_events() numbers every committed, unnumbered event under a lock, so positions
-- become visible strictly in increasing order and a reader of `position > cursor` can never
-- overtake a gap. See docs/adr/0002-event-store.md.
CREATE TABLE fhir_event (
    event_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position       bigint,
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
    CONSTRAINT fhir_event_stream_version UNIQUE (resource_type, resource_id, version),
    CONSTRAINT fhir_event_position UNIQUE (position)
);

-- The sequencer's work list: committed events that have no position yet.
CREATE INDEX fhir_event_unsequenced ON fhir_event (event_id) WHERE position IS NULL;
CREATE INDEX fhir_event_transaction ON fhir_event (transaction_id);
CREATE INDEX fhir_event_recorded_at ON fhir_event (recorded_at);

-- How far the outbox relay has published, per JetStream stream.
CREATE TABLE fhir_outbox_cursor (
    stream             text PRIMARY KEY,
    published_position bigint      NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Gives positions to committed events, in event_id order, and returns the positions of the
-- events asked for (all of them once this returns). With `wanted` NULL it only sequences.
--
-- The advisory lock serialises sequencers; each statement of this VOLATILE function takes a
-- fresh snapshot, so after the lock is granted it sees the positions the previous holder
-- committed. A caller whose events another sequencer already numbered takes no lock and
-- writes nothing. Positions are dense: they come from max(position) under the lock, and a
-- rolled-back pass gives nothing away.
CREATE FUNCTION fhir_sequence_events(wanted bigint[]) RETURNS TABLE (event_id bigint, event_position bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    base bigint;
    numbered bigint;
BEGIN
    IF wanted IS NULL OR EXISTS (
        SELECT 1 FROM fhir_event e WHERE e.event_id = ANY (wanted) AND e.position IS NULL
    ) THEN
        PERFORM pg_advisory_xact_lock(7345120938475610001);
        SELECT coalesce(max(e.position), 0) INTO base FROM fhir_event e;
        WITH todo AS (
            SELECT e.event_id AS id, row_number() OVER (ORDER BY e.event_id) AS n
            FROM fhir_event e
            WHERE e.position IS NULL
        )
        UPDATE fhir_event e SET position = base + todo.n FROM todo WHERE e.event_id = todo.id;
        GET DIAGNOSTICS numbered = ROW_COUNT;
        IF numbered > 0 THEN
            PERFORM pg_notify('fhir_event_sequenced', (base + numbered)::text);
        END IF;
    END IF;
    IF wanted IS NOT NULL THEN
        RETURN QUERY SELECT e.event_id, e.position FROM fhir_event e WHERE e.event_id = ANY (wanted);
    END IF;
END
$$;
