"""Week-over-week drift reports from consecutive weekly snapshots."""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

import dagster as dg
import polars as pl
from pydantic import Field

from quimbi_pipeline.core.drift import (
    axis_drift_long,
    customer_drift_wide,
    drift_axes,
    severity_counts,
    thumbprint_drift,
    top_movers,
    transition_counts,
)
from quimbi_pipeline.core.retention import RetentionPolicy
from quimbi_pipeline.core.snapshots import snapshot_chains
from quimbi_pipeline.defs.partitions import weekly_snapshots
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.temporal.assets import snapshot_day, temporal_snapshots
from quimbi_pipeline.defs.temporal.tables import (
    DRIFT_COLUMNS,
    RowWriter,
    drift_report,
    drift_rows,
    markdown,
)
from quimbi_pipeline.feature_store import orders_path
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline.temporal_store import (
    read_model_version,
    read_model_versions,
    read_snapshot,
    write_drift,
)

DRIFT_LOCK = 0x7E3_0001
DAYS_BETWEEN = 7


class DriftConfig(dg.Config):
    anomaly_threshold: float = Field(default=0.5, description="Overall drift flagged as anomaly.")
    store_from_drift: float = Field(
        default=0.1,
        description="Customers whose largest axis drift reaches this are written to PostgreSQL; "
        "the rest were STABLE on every axis (all customers stay in the lake).",
    )
    retention_days: int = Field(
        default=RetentionPolicy().weekly_days,
        description="Reports older than this many days before the data's latest order are kept "
        "in the lake only, like the weekly snapshots they compare.",
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=2,
        description="A backfill of 8 weeks or more is cut into two ranges of weeks reported on "
        "two threads, as temporal_snapshots cuts its dates (1: one range).",
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
    started = time.perf_counter()
    home = lake.paths()
    data_end = _data_end(home)
    # A long backfill is cut into two ranges of weeks reported on two threads, as the
    # snapshots are; a range reads the week before its first once more.
    ranges = snapshot_chains([], sorted(context.partition_keys), lambda _: 1.0, config.threads)

    def report(writer: RowWriter, weeks: list[str]) -> _RangeReport:
        done = _RangeReport()
        # Each week's snapshot is the next week's previous one: read once.
        cached_day, cached = None, None
        for key in weeks:
            day = snapshot_day(weekly_snapshots, key)
            previous_day = day - timedelta(days=DAYS_BETWEEN)
            if cached_day == previous_day:
                previous = cached
            else:
                previous = read_snapshot(home, "weekly", previous_day)
            current = read_snapshot(home, "weekly", day)
            cached_day, cached = day, current
            if current is None or previous is None:
                # The first week of a history has nothing to compare with.
                done.skipped += 1
                continue
            refitted = _refitted_axes(
                read_model_versions(home, "weekly", previous_day),
                read_model_versions(home, "weekly", day),
            )
            by_axis = thumbprint_drift(previous, current, refitted=refitted)
            by_customer = customer_drift_wide(by_axis, anomaly_threshold=config.anomaly_threshold)
            write_drift(home, day, drift_report(by_axis, by_customer))
            keep = data_end is not None and (data_end - day).days <= config.retention_days
            rows = partial(
                _rows,
                by_axis if keep else None,
                by_customer,
                day,
                config.store_from_drift,
                read_model_version(home, "weekly", day),
            )
            writer.submit("drift_reports", rows, {"report_date": day}, DRIFT_LOCK)
            done.weeks += 1
            done.in_postgres += keep
            # A range's weeks rise: its last report is its newest.
            done.newest = (day, by_axis, by_customer)
        return done

    with RowWriter(postgres.url) as writer, ThreadPoolExecutor(len(ranges)) as pool:
        reports = [f.result() for f in [pool.submit(report, writer, weeks) for weeks in ranges]]
        stored = writer.rows_written()
    metadata: dict[str, object] = {
        "weeks": sum(r.weeks for r in reports),
        "weeks_without_previous_snapshot": sum(r.skipped for r in reports),
        "weeks_in_postgres": sum(r.in_postgres for r in reports),
        "threads": len(ranges),
        "rows_written": stored,
        "seconds_total": round(time.perf_counter() - started, 2),
    }
    # The newest week's drift, shown in the metadata.
    newest = max((r.newest for r in reports if r.newest), key=lambda n: n[0], default=None)
    if newest is not None:
        _, by_axis, by_customer = newest
        long = axis_drift_long(by_axis, days_between=DAYS_BETWEEN)
        metadata.update(
            {
                "severity_by_axis": dg.MetadataValue.md(markdown(severity_counts(long))),
                "top_movers": dg.MetadataValue.md(markdown(top_movers(by_customer, n=10))),
                "segment_transitions": dg.MetadataValue.md(
                    markdown(transition_counts(long).head(30))
                ),
                "anomalies": int(by_customer["anomaly"].sum()),
                "customers_compared": by_customer.height,
                "axes_compared": len(drift_axes(by_axis)),
            }
        )
    return dg.MaterializeResult(metadata=metadata)


@dataclass
class _RangeReport:
    """What one range of weeks reported."""

    weeks: int = 0
    skipped: int = 0
    in_postgres: int = 0
    # (day, by_axis, by_customer) of its newest report
    newest: tuple[date, pl.DataFrame, pl.DataFrame] | None = None


def _refitted_axes(previous: dict[str, int] | None, current: dict[str, int] | None) -> set[str]:
    """Axes whose model version differs between two snapshots (their drift is meaningless)."""
    if previous is None or current is None:
        return set()
    return {axis for axis in current if axis in previous and previous[axis] != current[axis]}


def _rows(
    by_axis: pl.DataFrame | None,
    by_customer: pl.DataFrame,
    day: date,
    store_from_drift: float,
    model_version: str | None,
) -> pl.DataFrame:
    """drift_reports rows of one week's movers (none when ``by_axis`` is None)."""
    if by_axis is None:
        return pl.DataFrame(schema=DRIFT_COLUMNS)
    movers = by_customer.filter(pl.col("max_axis_drift") >= store_from_drift)
    moved = by_axis.join(movers.select("customer_id"), on="customer_id", how="semi")
    long = axis_drift_long(moved, days_between=DAYS_BETWEEN)
    previous_day = day - timedelta(days=DAYS_BETWEEN)
    return drift_rows(long, movers, day, previous_day, store_from_drift, model_version)


def _data_end(home: QuimbiHome) -> date | None:
    """The day of the latest order in the lake (the clock of the retention rule)."""
    if not orders_path(home).exists():
        return None
    latest = pl.scan_parquet(orders_path(home)).select(pl.col("ordered_at").max()).collect()
    value = latest.item()
    return value.date() if value is not None else None
