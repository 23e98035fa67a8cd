-- Statements of quimbi_pipeline.db; %(name)s are bound parameters.

-- name: snapshot_pairs
SELECT DISTINCT snapshot_date, snapshot_type FROM temporal_snapshots

-- name: snapshot_delete
DELETE FROM temporal_snapshots WHERE snapshot_date = %(snapshot_date)s AND snapshot_type = %(snapshot_type)s
