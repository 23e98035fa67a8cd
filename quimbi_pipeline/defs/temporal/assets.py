"""Temporal snapshots of every customer's thumbprint, and week-over-week drift reports."""

from datetime import date, timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.core.retention import RetentionPolicy
from quimbi_pipeline.core.snapshots import take_snapshot
from quimbi_pipeline.db.models_store import load_current_models, model_set_version
from quimbi_pipeline.db.writes import replace_rows
from quimbi_pipeline.defs.partitions import SNAPSHOT_PARTITIONS
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.segmentation.models import model_key
from quimbi_pipeline.feature_store import orders_path, tickets_path
from quimbi_pipeline.temporal_store import write_snapshot

SNAPSHOTS_LOCK = 0x7E3_0000


class SnapshotConfig(dg.Config):
    retention_days: int | None = Field(
        default=None,
        description="Snapshots older than this many days before the data's latest order are "
        "kept in the lake only (for drift) and not written to PostgreSQL, where the retention "
        "job would delete them anyway. Default: the snapshot type's retention.",
    )


def snapshot_day(partitions_def: dg.TimeWindowPartitionsDefinition, key: str) -> date:
    """The last day a partition covers: its snapshot holds every order up to that day's end."""
    window = partitions_def.time_window_for_partition_key(key)
    return (window.end - timedelta(days=1)).date()


def _snapshot_rows(snapshot, snapshot_type: str, version: str) -> pl.DataFrame:
    return snapshot.customers.select(
        "customer_id",
        pl.lit(snapshot.snapshot_date).alias("snapshot_date"),
        pl.lit(snapshot_type).alias("snapshot_type"),
        "thumbprint",
        "dominant_segments",
        "churn_risk_score",
        pl.col("total_orders").cast(pl.Int32),
        "lifetime_value",
        pl.lit(version).alias("model_version"),
    )


def build_snapshot_asset(name: str, snapshot_type: str) -> dg.AssetsDefinition:
    """A snapshot asset over the partitions of one snapshot type (daily, weekly, monthly)."""
    partitions_def = SNAPSHOT_PARTITIONS[snapshot_type]
    default_retention = RetentionPolicy().days_by_type()[snapshot_type]

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        deps=["orders", "tickets", *[model_key(axis.name) for axis in AXES]],
        group_name="temporal",
        kinds={"polars", "postgres"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"Each customer's fuzzy thumbprint on every axis as of the end of each "
        f"{snapshot_type} period, from the orders up to then and the current models.",
    )
    def _snapshots(
        context: dg.AssetExecutionContext,
        config: SnapshotConfig,
        lake: LakeResource,
        postgres: PostgresResource,
    ) -> dg.MaterializeResult:
        home = lake.paths()
        orders = pl.read_parquet(orders_path(home))
        tickets = pl.read_parquet(tickets_path(home)) if tickets_path(home).exists() else None
        data_end = orders["ordered_at"].max().date() if orders.height else None
        retention = (
            config.retention_days if config.retention_days is not None else default_retention
        )
        with postgres.connection() as conn:
            stored = load_current_models(conn)
            models = {a: m.model for a, m in stored.items() if m.model is not None}
            version = model_set_version(stored)
            columns = {axis.name: axis.columns() for axis in AXES}
            stored_days, lake_only, customers = [], [], 0
            for key in context.partition_keys:
                day = snapshot_day(partitions_def, key)
                snapshot = take_snapshot(orders, tickets, day, models, columns)
                write_snapshot(home, snapshot_type, snapshot)
                keep = data_end is not None and (data_end - day).days <= retention
                rows = _snapshot_rows(snapshot, snapshot_type, version)
                # Delete-then-insert of this date in one transaction: reruns replace, never add.
                replace_rows(
                    conn,
                    "temporal_snapshots",
                    rows if keep else rows.clear(),
                    {"snapshot_date": day, "snapshot_type": snapshot_type},
                    lock_key=SNAPSHOTS_LOCK,
                )
                (stored_days if keep else lake_only).append(day)
                customers = snapshot.customers.height
        return dg.MaterializeResult(
            metadata={
                "snapshots": len(context.partition_keys),
                "written_to_postgres": len(stored_days),
                "lake_only_beyond_retention": len(lake_only),
                "customers_in_latest": customers,
                "model_version": version,
                "first": str(snapshot_day(partitions_def, context.partition_keys[0])),
                "last": str(snapshot_day(partitions_def, context.partition_keys[-1])),
            }
        )

    return _snapshots


temporal_snapshots = build_snapshot_asset("temporal_snapshots", "weekly")
daily_snapshots = build_snapshot_asset("daily_snapshots", "daily")
monthly_snapshots = build_snapshot_asset("monthly_snapshots", "monthly")
