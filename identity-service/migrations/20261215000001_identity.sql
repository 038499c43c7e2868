-- The identity service's users and OAuth clients (identity-service/migrations, applied by the
-- identity service at start). Short-lived state (sessions, codes, refresh tokens) is in Redis.

CREATE TABLE identity_user (
    username      text PRIMARY KEY,
    -- Argon2id, as a PHC string.
    password_hash text NOT NULL,
    role          text NOT NULL
        CHECK (role IN ('student', 'nurse', 'physician', 'pharmacist', 'instructor', 'admin')),
    -- SMART's fhirUser: `Practitioner/<id>`.
    fhir_user     text,
    display_name  text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity_client (
    client_id      text PRIMARY KEY,
    name           text NOT NULL,
    confidential   boolean NOT NULL,
    redirect_uris  text[] NOT NULL DEFAULT '{}',
    -- Space-separated scopes the client may be granted.
    allowed_scopes text NOT NULL,
    -- The client's public keys for private_key_jwt: inline, or where to fetch them.
    jwks           jsonb,
    jwks_uri       text,
    -- Argon2id of the client secret (client_secret_basic), as a PHC string.
    secret_hash    text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
