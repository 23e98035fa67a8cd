-- Statements of quimbi_pipeline.db; %(name)s are bound parameters.

-- name: snapshot_pairs
SELECT DISTINCT snapshot_date, snapshot_type FROM temporal_snapshots

-- name: snapshot_delete
DELETE FROM temporal_snapshots WHERE snapshot_date = %(snapshot_date)s AND snapshot_type = %(snapshot_type)s

-- name: drift_delete_before
-- Drift reports follow the weekly snapshots they compare: older than the weekly retention.
DELETE FROM drift_reports WHERE report_date < %(cutoff)s
