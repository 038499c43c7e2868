-- Teaching sandboxes (ADR 0014): named copies of the record that take writes of their own.
--
-- A sandbox's events are ordinary events in `fhir_event`, in the sandbox's partition: the
-- stream of a resource in a sandbox is its live events up to the sandbox's fork position, then
-- the sandbox's own (whose versions and hash chain continue from there). The live record is
-- partition 0. A reset gives the sandbox a fresh partition, so it starts again from its fork
-- at once; the events of its earlier runs stay in the store, with their partition and the
-- sandbox's name in their metadata, for the audit trail.
ALTER TABLE fhir_event ADD COLUMN partition bigint NOT NULL DEFAULT 0;
ALTER TABLE fhir_event DROP CONSTRAINT fhir_event_stream_version;
ALTER TABLE fhir_event ADD CONSTRAINT fhir_event_stream_version
    UNIQUE (resource_type, resource_id, partition, version);

CREATE SEQUENCE sandbox_partition START 1;

CREATE TABLE sandbox (
    -- A URL path segment and a NATS subject token.
    name          text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    -- The class whose students may write in it (NULL: instructors and clinicians only).
    class         text,
    description   text,
    -- The live record's position it starts from.
    fork_position bigint      NOT NULL CHECK (fork_position >= 0),
    -- Its current run's partition of `fhir_event`.
    partition     bigint      NOT NULL UNIQUE DEFAULT nextval('sandbox_partition'),
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    reset_at      timestamptz
);
