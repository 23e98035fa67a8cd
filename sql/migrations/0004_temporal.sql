-- Each customer's fuzzy "thumbprint" at a date, computed from the orders up to that date
-- with the models current at computation time.
-- The two maps are json, not jsonb: a backfill loads a row per customer and week, and jsonb's
-- parse of the numbers was two thirds of the server's time (100K rows: 2.8 s of CPU as jsonb,
-- 1.1 s as json, which PostgreSQL only validates). ->, ->> and json_each work on json; cast
-- to jsonb for containment (@>).
CREATE TABLE IF NOT EXISTS temporal_snapshots (
    customer_id       text             NOT NULL,
    snapshot_date     date             NOT NULL,
    -- daily, weekly, monthly, quarterly or yearly (retention differs by type)
    snapshot_type     text             NOT NULL,
    -- {axis: [membership per segment, in the model's segment order]}, rounded as in profiles
    thumbprint        json             NOT NULL,
    -- {axis: dominant segment}
    dominant_segments json             NOT NULL,
    churn_risk_score  double precision,
    total_orders      integer,
    lifetime_value    double precision,
    model_version     text,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (customer_id, snapshot_date, snapshot_type)
);
CREATE INDEX IF NOT EXISTS temporal_snapshots_date ON temporal_snapshots (snapshot_type, snapshot_date);

-- Week-over-week drift of each customer whose behavior moved (any axis MINOR or worse);
-- a customer absent from a report date was STABLE on every axis that week. Like the weekly
-- snapshots, reports older than the weekly retention are kept in the lake only.
CREATE TABLE IF NOT EXISTS drift_reports (
    customer_id     text             NOT NULL,
    report_date     date             NOT NULL,
    previous_date   date             NOT NULL,
    overall_drift   double precision NOT NULL,
    max_axis_drift  double precision NOT NULL,
    severity        text             NOT NULL,
    anomaly         boolean          NOT NULL,
    axes_changed    integer          NOT NULL,
    -- {axis: {"drift", "severity", "velocity", "from", "to", "changed"}} for the axes that
    -- moved (MINOR or worse, or a changed dominant segment); the others were STABLE
    axis_drift      jsonb            NOT NULL,
    model_version   text,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, report_date)
);
CREATE INDEX IF NOT EXISTS drift_reports_date ON drift_reports (report_date, severity);
