-- Statements of quimbi_pipeline.db; %(name)s are bound parameters.

-- name: current
-- The current model row of every axis.
SELECT axis, version, status, reason, model, content_hash, k, data_as_of
FROM segment_models
WHERE status <> 'retired'
ORDER BY axis

-- name: retire
UPDATE segment_models SET status = 'retired' WHERE axis = %(axis)s AND status <> 'retired'

-- name: insert
INSERT INTO segment_models (
    axis, version, status, reason, k, segment_names, segment_sizes, centres_scaled,
    centres_original, scaler, scores, model, content_hash, sample_size, data_as_of
)
SELECT %(axis)s, COALESCE(MAX(version), 0) + 1, %(status)s, %(reason)s, %(k)s, %(segment_names)s,
       %(segment_sizes)s, %(centres_scaled)s, %(centres_original)s, %(scaler)s, %(scores)s,
       %(model)s, %(content_hash)s, %(sample_size)s, %(data_as_of)s
FROM segment_models WHERE axis = %(axis)s
RETURNING version
