"""Batch upserts into `customer_profiles`: one transaction per batch, rerunnable, serialised."""

from collections.abc import Callable

import polars as pl
import psycopg

from quimbi_pipeline.db.sql_files import statement
from quimbi_pipeline.db.writes import copy_frame

_SQL = "db/customer_profiles.sql"
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
    before_commit: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Replaces one batch's profiles in a single transaction; returns rows changed/removed.

    COPY into a temporary staging table, then one INSERT ... ON CONFLICT, then removal of
    the batch's customers that are no longer in the data. A process killed anywhere before
    COMMIT leaves the batch's previous rows exactly as they were. The batch's advisory lock
    is taken first, so a second writer of the same batch waits for this one's COMMIT.

    Args:
        conn: a connection outside any transaction (the batch is its own transaction).
        batch: the customer batch; every row's ``customer_batch`` must be this one.
        profiles: the batch's rows with every column of ``PROFILE_COLUMNS``.
        after_copy: called between COPY and upsert, holding the lock (a seam for tests).
        before_commit: called after upsert and prune, just before COMMIT (a seam for tests).

    Returns:
        ``rows_upserted`` (inserted or changed), ``rows_removed`` and ``rows_in_batch``.
    """
    frame = profiles.select(PROFILE_COLUMNS)
    strays = frame.filter(pl.col("customer_batch") != batch).height
    if strays:
        raise ValueError(f"{strays} profile rows belong to another batch than {batch}")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(statement(_SQL, "lock_batch"), {"lock_key": batch_lock_key(batch)})
        cur.execute(statement(_SQL, "create_stage"))
        copy_frame(cur, "customer_profiles_stage", frame)
        if after_copy is not None:
            after_copy()
        cur.execute(statement(_SQL, "upsert"))
        changed = cur.rowcount
        cur.execute(statement(_SQL, "prune"), {"batch": batch})
        removed = cur.rowcount
        if before_commit is not None:
            before_commit()
    return {"rows_upserted": changed, "rows_removed": removed, "rows_in_batch": frame.height}


def batch_lock_key(batch: int) -> int:
    """The advisory-lock key that serialises the writers of one batch."""
    return PROFILES_LOCK_BASE + batch
