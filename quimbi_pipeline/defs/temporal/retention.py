"""The retention cleanup job: thins old snapshots by type (daily 7 d ... yearly 5 y)."""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from quimbi_pipeline.core.retention import RetentionPolicy, expired_snapshots
from quimbi_pipeline.db.sql_files import statement
from quimbi_pipeline.defs.resources import PostgresResource

RETENTION_LOCK = 0x7E3_0000  # the snapshot writers' lock: cleanup never interleaves with them


class RetentionConfig(dg.Config):
    today: str | None = None  # ISO date; the schedule passes its tick date
    daily_days: int = 7
    weekly_days: int = 60
    monthly_days: int = 365
    quarterly_days: int = 730
    yearly_days: int = 1825


@dg.op
def apply_snapshot_retention(
    context: dg.OpExecutionContext, config: RetentionConfig, postgres: PostgresResource
) -> dg.Output[int]:
    """Deletes every snapshot date older than its type's retention, and the drift reports
    older than the weekly retention (the weekly snapshots they compare), in one transaction."""
    policy = RetentionPolicy(
        daily_days=config.daily_days,
        weekly_days=config.weekly_days,
        monthly_days=config.monthly_days,
        quarterly_days=config.quarterly_days,
        yearly_days=config.yearly_days,
    )
    with postgres.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (RETENTION_LOCK,))
        pairs = conn.execute(statement("db/temporal.sql", "snapshot_pairs")).fetchall()
        frame = pl.DataFrame(
            pairs, schema={"snapshot_date": pl.Date, "snapshot_type": pl.String}, orient="row"
        )
        # Without a date from the schedule, "today" is the newest snapshot: the data's own
        # clock, never the wall clock, so a manual run is reproducible.
        today = (
            date.fromisoformat(config.today)
            if config.today
            else (frame["snapshot_date"].max() if frame.height else None)
        )
        expired = expired_snapshots(frame, today=today, policy=policy) if today else frame.clear()
        deleted = drift_deleted = 0
        for row in expired.iter_rows(named=True):
            deleted += conn.execute(statement("db/temporal.sql", "snapshot_delete"), row).rowcount
        if today:
            cutoff = today - timedelta(days=policy.weekly_days)
            drift_deleted = conn.execute(
                statement("db/temporal.sql", "drift_delete_before"), {"cutoff": cutoff}
            ).rowcount
    context.log.info(
        f"retention as of {today}: {expired.height} snapshot dates, {deleted} rows; "
        f"{drift_deleted} drift report rows"
    )
    return dg.Output(
        deleted,
        metadata={
            "today": str(today),
            "snapshot_dates_deleted": expired.height,
            "rows_deleted": deleted,
            "drift_rows_deleted": drift_deleted,
        },
    )


@dg.job(description="Delete snapshots older than their type's retention period.")
def snapshot_retention_job() -> None:
    apply_snapshot_retention()
