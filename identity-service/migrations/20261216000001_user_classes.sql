-- The teaching classes a user belongs to (`demo`), carried in their access tokens (`classes`):
-- a student writes only inside the sandboxes of these classes.
ALTER TABLE identity_user ADD COLUMN classes text[] NOT NULL DEFAULT '{}';
