-- The past is asked for by instant as well as by position (`/fhir/_asof/2026-12-01T02:00:00Z`):
-- the position of an instant is found from the events recorded up to it, newest first.
CREATE INDEX fhir_event_recorded_at ON fhir_event (recorded_at);
