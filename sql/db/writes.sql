-- Statement templates for quimbi_pipeline.db.writes. {braces} are identifiers filled in with
-- psycopg.sql.Identifier; %(name)s are bound parameters.

-- name: lock
-- Serializes writers of the same partition across processes until the end of the transaction.
SELECT pg_advisory_xact_lock(%(lock_key)s);

-- name: copy_csv
COPY {table} ({columns}) FROM STDIN (FORMAT csv);

-- name: copy_text
-- Tab-separated, \N for NULL; only for rows without tabs, line breaks or backslashes.
COPY {table} ({columns}) FROM STDIN (FORMAT text);

-- name: create_stage
-- Only the frame's columns, with the target's types and none of its constraints or defaults.
CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA;

-- name: upsert_from_stage
INSERT INTO {table} ({columns})
SELECT {columns} FROM {stage}
ON CONFLICT ({keys}) DO UPDATE SET {assignments};

-- name: insert_new_from_stage
-- Used when every column is a key column: there is nothing to update.
INSERT INTO {table} ({columns})
SELECT {columns} FROM {stage}
ON CONFLICT ({keys}) DO NOTHING;

-- name: drop_stage
DROP TABLE {stage};

-- name: delete_where
DELETE FROM {table} WHERE {conditions};
