-- One row per customer: segments on every applicable axis, fuzzy memberships, metrics.
CREATE TABLE IF NOT EXISTS customer_profiles (
    customer_id              text PRIMARY KEY,
    store_id                 text NOT NULL DEFAULT 'default',
    -- {axis: [segments with membership >= 0.2, dominant first]}
    segment_memberships      jsonb,
    -- {axis: dominant segment}
    dominant_segments        jsonb,
    -- {axis: membership of the dominant segment}
    membership_strengths     jsonb,
    -- {axis: {segment: membership}}
    fuzzy_memberships        jsonb,
    archetype_id             text,
    overall_confidence       double precision,
    lifetime_value           double precision,
    total_orders             integer,
    avg_order_value          double precision,
    days_since_last_purchase double precision,
    customer_tenure_days     double precision,
    churn_risk_score         double precision CHECK (churn_risk_score BETWEEN 0 AND 1),
    -- segmented, or no_orders (known only from support tickets: segments are null)
    segmentation_status      text NOT NULL DEFAULT 'segmented',
    status_reason            text,
    customer_batch           integer NOT NULL,
    model_version            text,
    last_updated             timestamptz NOT NULL DEFAULT now(),
    created_at               timestamptz NOT NULL DEFAULT now()
)
-- Rows (about 3 kB, mostly JSON) are stored uncompressed: every run rewrites them, and pglz
-- compression was a fifth of the upsert's server time (measured on 100K customers); readers
-- save the decompression. The price is a table about 1.5x larger.
WITH (toast_tuple_target = 8160);

-- jsonb_path_ops: smaller and faster to maintain than the default opclass, and it serves
-- the containment queries (@>) that the use-case queries in sql/queries/ run.
CREATE INDEX IF NOT EXISTS customer_profiles_segment_memberships
    ON customer_profiles USING gin (segment_memberships jsonb_path_ops);
CREATE INDEX IF NOT EXISTS customer_profiles_dominant_segments
    ON customer_profiles USING gin (dominant_segments jsonb_path_ops);
CREATE INDEX IF NOT EXISTS customer_profiles_membership_strengths
    ON customer_profiles USING gin (membership_strengths jsonb_path_ops);
CREATE INDEX IF NOT EXISTS customer_profiles_fuzzy_memberships
    ON customer_profiles USING gin (fuzzy_memberships jsonb_path_ops);
CREATE INDEX IF NOT EXISTS customer_profiles_archetype ON customer_profiles (archetype_id);
CREATE INDEX IF NOT EXISTS customer_profiles_batch ON customer_profiles (customer_batch);
