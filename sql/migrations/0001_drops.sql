-- The ingestion ledger: one row per landed file ("drop"), written when the drop is ingested.
-- Rejected rows are counted, never silently lost: rows_read = rows_accepted + rows_rejected.
CREATE TABLE drops (
    drop_id            text PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('orders', 'tickets')),
    layout             text,
    file_name          text,
    sha256             text,
    rows_read          bigint NOT NULL,
    rows_accepted      bigint NOT NULL,
    rows_rejected      bigint NOT NULL,
    -- Reason -> number of rejected rows, e.g. {"unparseable_date": 3}.
    rejected_by_reason jsonb,
    customers          bigint,
    -- Earliest and latest event time in the drop (local wall-clock time, as exported).
    first_at           timestamp,
    last_at            timestamp,
    ingested_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT drops_rows_balance CHECK (rows_read = rows_accepted + rows_rejected)
);
