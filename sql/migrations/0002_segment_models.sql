-- One row per fitted (or skipped) segment model of one behavioral axis, versioned.
-- Assignment and any later service load the `active` row of each axis without Dagster.
CREATE TABLE IF NOT EXISTS segment_models (
    axis             text        NOT NULL,
    version          integer     NOT NULL,
    -- active: the model in use; retired: superseded by a later version;
    -- not_applicable: the axis's inputs are absent or constant (see reason), not clustered.
    status           text        NOT NULL CHECK (status IN ('active', 'retired', 'not_applicable')),
    reason           text,
    k                integer,
    segment_names    jsonb,
    segment_sizes    jsonb,
    centres_scaled   jsonb,
    centres_original jsonb,
    scaler           jsonb,
    scores           jsonb,
    model            jsonb,
    content_hash     text        NOT NULL,
    sample_size      integer,
    data_as_of       timestamp,
    fitted_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (axis, version)
);

-- At most one current row per axis (active or not_applicable).
CREATE UNIQUE INDEX IF NOT EXISTS segment_models_current
    ON segment_models (axis) WHERE status <> 'retired';
