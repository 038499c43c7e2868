-- Scenarios (ADR 0014): named, versioned recordings of a cohort's story over a time window,
-- kept as the portable file instructors export and import (a manifest line, the cohort's
-- resources at the window's start, then the window's changes with their offsets, as NDJSON).
-- A sandbox may start as a scenario's starting state instead of at a live position.
CREATE TABLE scenario (
    name       text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    version    integer     NOT NULL CHECK (version > 0),
    manifest   jsonb       NOT NULL,
    body       text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

ALTER TABLE sandbox ADD COLUMN scenario_name text, ADD COLUMN scenario_version integer;
