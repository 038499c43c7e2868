-- Kept result lists name resources by `res_pk`, which a projection rebuild renumbers: a list
-- kept before a rebuild would page through other resources after it. Each list records the
-- generation of the projection it was computed from, the OID of `hfj_resource` (the rebuild's
-- swap replaces the table, so the OID changes with every rebuild and with nothing else that
-- renumbers), and a page of a list from another generation answers 410. Lists are bounded per
-- client, so the client (the address the edge reports) is recorded too.
ALTER TABLE search_result ADD COLUMN generation oid, ADD COLUMN client text;
CREATE INDEX search_result_client ON search_result (client, created_at);
