"""Week-over-week drift reports from consecutive weekly snapshots."""

from datetime import timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from quimbi_pipeline.core.drift import (
    axis_drift,
    customer_drift,
    severity_counts,
    top_movers,
    transition_counts,
)
from quimbi_pipeline.db.writes import replace_rows
from quimbi_pipeline.defs.partitions import weekly_snapshots
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.temporal.assets import snapshot_day, temporal_snapshots
from quimbi_pipeline.defs.temporal.tables import drift_rows, markdown
from quimbi_pipeline.temporal_store import drift_path, read_snapshot_long

DRIFT_LOCK = 0x7E3_0001


class DriftConfig(dg.Config):
    anomaly_threshold: float = Field(default=0.5, description="Overall drift flagged as anomaly.")
    store_from_drift: float = Field(
        default=0.1,
        description="Customers whose largest axis drift reaches this are written to PostgreSQL; "
        "the rest were STABLE on every axis (all customers stay in the lake).",
    )


@dg.asset(
    partitions_def=weekly_snapshots,
    deps=[
        dg.AssetDep(
            temporal_snapshots,
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1),
        )
    ],
    group_name="temporal",
    kinds={"polars", "postgres"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def drift_reports(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    lake: LakeResource,
    postgres: PostgresResource,
) -> dg.MaterializeResult:
    """How far each customer's thumbprint moved since the previous week, per axis and overall."""
    home = lake.paths()
    latest: tuple[pl.DataFrame, pl.DataFrame] | None = None
    weeks = skipped = stored = 0
    with postgres.connection() as conn:
        for key in context.partition_keys:
            day = snapshot_day(weekly_snapshots, key)
            previous_day = day - timedelta(days=7)
            current = read_snapshot_long(home, "weekly", day)
            previous = read_snapshot_long(home, "weekly", previous_day)
            if current is None or previous is None:
                # The first week of a history has nothing to compare with.
                skipped += 1
                continue
            by_axis = axis_drift(previous, current, days_between=7)
            by_customer = customer_drift(by_axis, anomaly_threshold=config.anomaly_threshold)
            path = drift_path(home, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            by_axis.write_parquet(path)
            rows = drift_rows(by_axis, by_customer, day, previous_day, config.store_from_drift)
            replace_rows(conn, "drift_reports", rows, {"report_date": day}, lock_key=DRIFT_LOCK)
            stored += rows.height
            weeks += 1
            latest = (by_axis, by_customer)
    metadata: dict[str, object] = {
        "weeks": weeks,
        "weeks_without_previous_snapshot": skipped,
        "rows_written": stored,
    }
    if latest is not None:
        by_axis, by_customer = latest
        metadata.update(
            {
                "severity_by_axis": dg.MetadataValue.md(markdown(severity_counts(by_axis))),
                "top_movers": dg.MetadataValue.md(markdown(top_movers(by_customer, n=10))),
                "segment_transitions": dg.MetadataValue.md(
                    markdown(transition_counts(by_axis).head(30))
                ),
                "anomalies": int(by_customer["anomaly"].sum()),
                "customers_compared": by_customer.height,
            }
        )
    return dg.MaterializeResult(metadata=metadata)
