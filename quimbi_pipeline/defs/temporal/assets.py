"""Temporal snapshots of every customer's thumbprint, daily, weekly or monthly."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from functools import partial

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.core.retention import RetentionPolicy
from quimbi_pipeline.core.snapshots import SnapshotSeries, end_of_day, snapshot_chains
from quimbi_pipeline.db.models_store import load_current_models, model_set_version
from quimbi_pipeline.defs.partitions import SNAPSHOT_PARTITIONS
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.segmentation.models import model_key
from quimbi_pipeline.defs.temporal.tables import RowWriter, snapshot_rows
from quimbi_pipeline.feature_store import orders_path, tickets_path
from quimbi_pipeline.temporal_store import read_model_versions, write_snapshot

SNAPSHOTS_LOCK = 0x7E3_0000
# Memory for snapshots waiting to be written to PostgreSQL (see RowWriter).
QUEUE_BYTES = 512 * 2**20


class SnapshotConfig(dg.Config):
    retention_days: int | None = Field(
        default=None,
        description="Snapshots older than this many days before the data's latest order are "
        "kept in the lake only (for drift) and not written to PostgreSQL, where the retention "
        "job would delete them anyway. Default: the snapshot type's retention.",
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=2,
        description="A backfill of many dates is split into two ranges computed on two "
        "threads (1: one range). The ranges share one prepared copy of the order history.",
    )


def snapshot_day(partitions_def: dg.TimeWindowPartitionsDefinition, key: str) -> date:
    """The last day a partition covers: its snapshot holds every order up to that day's end."""
    window = partitions_def.time_window_for_partition_key(key)
    return (window.end - timedelta(days=1)).date()


def period_before(partitions_def: dg.TimeWindowPartitionsDefinition, keys: list[str]) -> date:
    """The last day of the period before the first of ``keys``."""
    start = partitions_def.time_window_for_partition_key(min(keys)).start
    return (start - timedelta(days=1)).date()


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
        started = time.perf_counter()
        home = lake.paths()
        # Scanned, not read: the series keeps its own prepared copy of the history, and a
        # second, raw copy held here was 2.2 GiB of the peak at 1M customers.
        orders = pl.scan_parquet(orders_path(home))
        tickets = pl.scan_parquet(tickets_path(home)) if tickets_path(home).exists() else None
        spans = (
            orders.group_by("customer_id")
            .agg(first=pl.col("ordered_at").min(), last=pl.col("ordered_at").max())
            .collect()
        )
        latest = spans["last"].max()
        data_end = latest.date() if latest is not None else None
        retention = (
            config.retention_days if config.retention_days is not None else default_retention
        )
        seconds: dict[str, float] = {}
        with postgres.connection() as conn:
            stored = load_current_models(conn)
        models = {a: m.model for a, m in stored.items() if m.model is not None}
        versions = {a: m.version for a, m in stored.items() if m.model is not None}
        version = model_set_version(stored)
        keys = context.partition_keys
        days = sorted(snapshot_day(partitions_def, key) for key in keys)
        # The period before the first is snapshotted again when other models made it, so that
        # the first period's drift compares thumbprints of the same models.
        before = period_before(partitions_def, keys)
        if read_model_versions(home, snapshot_type, before) not in (None, versions):
            days.insert(0, before)
        stored_days = [d for d in days if data_end is not None and (data_end - d).days <= retention]
        lake_only = [d for d in days if d not in stored_days]
        # Customers present at each date: the weight of its work when the dates are split.
        firsts = np.sort(spans["first"].to_numpy())

        def customers_at(day: date) -> float:
            return float(np.searchsorted(firsts, np.datetime64(end_of_day(day)), side="right"))

        chains = snapshot_chains(stored_days, lake_only, customers_at, config.threads)
        # Each run has its own series (a series carries its last date's features forward);
        # they share one prepared copy of the history.
        first_series = SnapshotSeries(orders, tickets, models)
        series = [first_series, *(first_series.fork() for _ in chains[1:])]
        # Queued dates hold their snapshot until written: as many as fit a memory budget.
        width = sum(len(m.segment_names) + 3 for m in models.values()) * 8
        pending = int(QUEUE_BYTES // max(1, spans.height * width))
        with RowWriter(postgres.url, pending=max(1, pending)) as writer:

            def take(
                run: SnapshotSeries, chain: list[date]
            ) -> tuple[float, float, dict[date, int]]:
                """Takes a run's dates; returns its compute and lake seconds and customers."""
                compute = lake_seconds = 0.0
                customers: dict[date, int] = {}
                for day in chain:
                    tick = time.perf_counter()
                    snapshot = run.take(day)
                    tock = time.perf_counter()
                    write_snapshot(home, snapshot_type, snapshot, versions, version)
                    compute += tock - tick
                    lake_seconds += time.perf_counter() - tock
                    customers[day] = snapshot.customers.height
                    kept = snapshot if day in stored_days else None
                    # Delete-then-insert of this date in one transaction: reruns replace.
                    writer.submit(
                        "temporal_snapshots",
                        partial(snapshot_rows, kept, snapshot_type, version),
                        {"snapshot_date": day, "snapshot_type": snapshot_type},
                        SNAPSHOTS_LOCK,
                    )
                return compute, lake_seconds, customers

            # Dates kept in PostgreSQL first: it parses their rows while the rest are computed.
            with ThreadPoolExecutor(len(chains)) as pool:
                runs = [pool.submit(take, *pair) for pair in zip(series, chains, strict=True)]
                taken = [run.result() for run in runs]
            seconds["compute"] = sum(t[0] for t in taken)
            seconds["lake"] = sum(t[1] for t in taken)
            customers = {day: n for t in taken for day, n in t[2].items()}
            tick = time.perf_counter()
            rows = writer.rows_written()
        seconds["postgres_wait"] = time.perf_counter() - tick
        return dg.MaterializeResult(
            metadata={
                "snapshots": len(days),
                "written_to_postgres": len(stored_days),
                "lake_only_beyond_retention": len(lake_only),
                "resnapshotted_for_new_models": len(days) - len(keys),
                "customers_in_latest": customers[days[-1]],
                "threads": len(chains),
                "model_version": version,
                "first": str(days[0]),
                "last": str(days[-1]),
                "rows_written": rows,
                # Summed over the threads.
                "seconds_compute": round(seconds["compute"], 2),
                "seconds_lake": round(seconds["lake"], 2),
                "seconds_waiting_for_postgres": round(seconds["postgres_wait"], 2),
                "seconds_total": round(time.perf_counter() - started, 2),
            }
        )

    return _snapshots


temporal_snapshots = build_snapshot_asset("temporal_snapshots", "weekly")
daily_snapshots = build_snapshot_asset("daily_snapshots", "daily")
monthly_snapshots = build_snapshot_asset("monthly_snapshots", "monthly")
