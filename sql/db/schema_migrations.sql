-- Bookkeeping for quimbi_pipeline.db.migrations. Not a migration itself: the ledger of them.

-- name: lock
-- Serializes migrators across processes until the end of the current transaction.
SELECT pg_advisory_xact_lock(%(lock_key)s);

-- name: create_ledger
CREATE TABLE IF NOT EXISTS quimbi_schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied
SELECT version, name, checksum FROM quimbi_schema_migrations ORDER BY version;

-- name: record
INSERT INTO quimbi_schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);
