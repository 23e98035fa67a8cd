"""Batch upserts into `customer_profiles`: one transaction per batch, rerunnable, serialised."""

from collections.abc import Callable

import polars as pl
import psycopg

from quimbi_pipeline.db.sql_files import statement
from quimbi_pipeline.db.writes import copy_frame

# Advisory-lock namespace of profile batches: two runs writing the same batch queue up
# instead of interleaving their rows.
PROFILES_LOCK_BASE = 0x9F0_0000

PROFILE_COLUMNS = (
    "customer_id",
    "store_id",
    "segment_memberships",
    "dominant_segments",
    "membership_strengths",
    "fuzzy_memberships",
    "archetype_id",
    "overall_confidence",
    "lifetime_value",
    "total_orders",
    "avg_order_value",
    "days_since_last_purchase",
    "customer_tenure_days",
    "churn_risk_score",
    "segmentation_status",
    "status_reason",
    "customer_batch",
    "model_version",
)


def upsert_profile_batch(
    conn: psycopg.Connection,
    batch: int,
    profiles: pl.DataFrame,
    *,
    after_copy: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Replaces one batch's profiles in a single transaction; returns rows changed/removed.

    COPY into a temporary staging table, then one INSERT ... ON CONFLICT, then removal of
    the batch's customers that are no longer in the data. A process killed anywhere before
    COMMIT leaves the batch's previous rows exactly as they were.

    Args:
        after_copy: called between COPY and upsert (a seam for the crash test).
    """
    frame = profiles.select(PROFILE_COLUMNS)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (PROFILES_LOCK_BASE + batch,))
        cur.execute(statement("db/customer_profiles.sql", "create_stage"))
        copy_frame(cur, "customer_profiles_stage", frame)
        if after_copy is not None:
            after_copy()
        cur.execute(statement("db/customer_profiles.sql", "upsert"))
        changed = cur.rowcount
        cur.execute(statement("db/customer_profiles.sql", "prune"), {"batch": batch})
        removed = cur.rowcount
    return {"rows_upserted": changed, "rows_removed": removed, "rows_in_batch": frame.height}
