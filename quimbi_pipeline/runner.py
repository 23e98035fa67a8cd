"""The main job, headless: register drops, then materialize everything they feed, in order.

Every stage is a named Dagster job executed in this process against the real instance
(DAGSTER_HOME under the home folder), so each run is visible in the UI afterwards.
"""

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

import dagster as dg
import polars as pl

from quimbi_pipeline.core.ingest import IngestError
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.models_store import load_current_models, model_set_version
from quimbi_pipeline.defs.jobs import INGEST_JOBS
from quimbi_pipeline.defs.partitions import (
    DROP_PARTITIONS,
    HISTORY_START,
    customer_batches,
    weekly_snapshots,
)
from quimbi_pipeline.drops import Drop, DropConflict, DropRegistry, is_candidate
from quimbi_pipeline.feature_store import orders_path
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline.runtime import Runtime
from quimbi_pipeline.temporal_store import latest_drift

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


class PipelineError(Exception):
    """A failure explained for people: names the file, the line where known, and the problem."""


@dataclass
class RunSummary:
    drops: list[Drop] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the export files directly inside any directory given."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(p for p in sorted(path.iterdir()) if is_candidate(p))
        elif path.is_file():
            files.append(path)
        else:
            raise PipelineError(f"{path}: no such file or directory")
    if not files:
        raise PipelineError("no export files found in " + ", ".join(map(str, paths)))
    return files


class PipelineRunner:
    """Executes the pipeline's jobs in order against the instance of a runtime."""

    def __init__(self, rt: Runtime, log: Callable[[str], None] = print, verbose: bool = False):
        from quimbi_pipeline.definitions import defs

        self.rt = rt
        self.defs = defs
        self.log = log
        self.registry = DropRegistry(rt.home)
        # Dagster's console logger repeats every event and stack trace; the CLI explains
        # failures itself and the full event log stays in the instance for the UI.
        self.run_config = (
            {} if verbose else {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        )

    @cached_property
    def instance(self) -> dg.DagsterInstance:
        # Opened on first use, so that a bad export is refused before Dagster's storage is set up.
        instance = dg.DagsterInstance.get()
        # Dagster's PostgreSQL storages open a new connection for every read and write of an
        # event by default; one ingest run of 36 drops made 547 of them (1.3 s of connecting
        # in this process alone, plus a server process each). This one process runs every
        # job in turn, so it keeps a small pool instead, as dagster-webserver does. No
        # statement timeout (0): the jobs' own storage calls may run long on big backfills.
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=5)
        return instance

    def execute(
        self,
        job_name: str,
        *,
        tags: dict[str, str] | None = None,
        ops: dict[str, dict] | None = None,
    ) -> dg.ExecuteInProcessResult:
        """Runs one named job in-process; a failure becomes a PipelineError with its message.

        ``ops``: run config of the job's ops (assets), ``{name: {"config": {...}}}``.
        """
        job = self.defs.resolve_job_def(job_name)
        run_config = {**self.run_config, **({"ops": ops} if ops else {})}
        result = job.execute_in_process(
            run_config=run_config, instance=self.instance, tags=tags, raise_on_error=False
        )
        if not result.success:
            raise PipelineError(_failure_message(result, job_name))
        return result

    def register(self, paths: Iterable[str | Path]) -> list[Drop]:
        drops: list[Drop] = []
        for path in expand_paths(paths):
            try:
                drops.append(self.registry.land(path)[0])
            except (DropConflict, IngestError) as problem:
                raise PipelineError(str(problem)) from problem
        return list({d.drop_id: d for d in drops}.values())

    def ingest(self, drops: list[Drop], kind: str) -> None:
        """Adds the drops as partitions and ingests those not yet in the lake, one run per block."""
        partitions = DROP_PARTITIONS[kind]
        keys = [d.drop_id for d in drops if d.kind == kind]
        known = set(self.instance.get_dynamic_partitions(partitions.name))
        self.instance.add_dynamic_partitions(partitions.name, [k for k in keys if k not in known])
        stale = {d.drop_id for d in drops if d.kind == kind and not is_ingested(self.rt.home, d)}
        ordered = self.instance.get_dynamic_partitions(partitions.name)
        for block in contiguous_blocks(ordered, stale):
            self.log(f"ingesting {len(block)} {kind} drop(s): {block[0]} .. {block[-1]}")
            self.execute(INGEST_JOBS[kind].name, tags={RANGE_START: block[0], RANGE_END: block[-1]})

    def run(self, paths: Iterable[str | Path], snapshot_weeks: int | None = None) -> RunSummary:
        """Every stage in order; ``snapshot_weeks`` limits the snapshot and drift backfill to
        that many of the latest weeks (default: the whole order history; 0: none, the run
        ends with the profiles)."""
        summary = RunSummary()
        with _timed(summary, "register"):
            summary.drops = self.register(paths)
        for kind in DROP_PARTITIONS:
            with _timed(summary, f"ingest_{kind}"):
                self.ingest(summary.drops, kind)
        with _timed(summary, "lake"):
            self.execute("lake_job")
        with _timed(summary, "segmentation"):
            self.execute("segmentation_job")
        summary.extra.update(self.model_summary())
        with _timed(summary, "profiles"):
            summary.extra.update(self.profiles())
        if snapshot_weeks == 0:
            summary.extra.update({"snapshot_weeks": 0, "latest_drift": {}})
            return summary
        with _timed(summary, "snapshots"):
            summary.extra.update(self.snapshots(snapshot_weeks))
        return summary

    def profiles(self) -> dict[str, object]:
        """Assigns every batch and upserts its profiles (one run), then ranks archetypes."""
        keys = customer_batches.get_partition_keys()
        result = self.execute("profiles_job", tags={RANGE_START: keys[0], RANGE_END: keys[-1]})
        self.execute("archetypes_job")
        metadata = _asset_metadata(result, "customer_profiles")
        return {
            "profiles_upserted": int(metadata.get("rows_upserted", 0)),
            "profiles_changed": int(metadata.get("rows_changed", 0)),
        }

    def snapshots(self, limit: int | None = None) -> dict[str, object]:
        """Backfills the weekly snapshots and drift reports over the whole order history, or
        over its last ``limit`` weeks."""
        span = (
            pl.scan_parquet(orders_path(self.rt.home))
            .select(
                pl.col("ordered_at").min().alias("first"), pl.col("ordered_at").max().alias("last")
            )
            .collect()
            .row(0)
        )
        if span[0] is None:
            return {"snapshot_weeks": 0, "latest_drift": {}}
        weeks = history_weeks(span[0].date(), span[1].date(), limit)
        self.log(f"snapshots and drift for {len(weeks)} weeks: {weeks[0]} .. {weeks[-1]}")
        self.execute("weekly_snapshot_job", tags={RANGE_START: weeks[0], RANGE_END: weeks[-1]})
        return {"snapshot_weeks": len(weeks), "latest_drift": latest_drift(self.rt.home)}

    def model_summary(self) -> dict[str, object]:
        """Axes fitted with their k, and axes skipped with the reason, from the model table."""
        with connect(self.rt.database_url) as conn:
            models = load_current_models(conn)
        fitted = {a: m for a, m in models.items() if m.model is not None}
        return {
            "axes_fitted": sorted(fitted),
            "axes_skipped": {a: m.reason for a, m in sorted(models.items()) if m.model is None},
            "axis_k": {a: len(m.model.segment_names) for a, m in sorted(fitted.items())},
            "model_version": model_set_version(models),
        }


def is_ingested(home: QuimbiHome, drop: Drop) -> bool:
    """Whether the lake holds this drop's exact content already (its manifest has the same hash)."""
    manifest = home.raw_dir(drop.kind, drop.drop_id) / "manifest.json"
    return manifest.exists() and json.loads(manifest.read_text()).get("sha256") == drop.sha256


def contiguous_blocks(ordered: list[str], wanted: set[str]) -> list[list[str]]:
    """Splits the wanted keys into runs of neighbours in partition order (one range run each)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for key in ordered:
        if key in wanted:
            current.append(key)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def drop_totals(home: QuimbiHome, drops: list[Drop], kind: str) -> dict[str, int]:
    """Rows read/accepted/rejected and distinct customers over the given drops' manifests."""
    mine = [d for d in drops if d.kind == kind]
    manifests = [
        json.loads((home.raw_dir(kind, d.drop_id) / "manifest.json").read_text()) for d in mine
    ]
    files = [
        f for d in mine for f in (home.raw_dir(kind, d.drop_id) / "accepted").glob("*.parquet")
    ]
    customers = (
        pl.scan_parquet(files).select(pl.col("customer_id").n_unique()).collect().item()
        if files
        else 0
    )
    return {
        "drops": len(mine),
        "rows_read": sum(m["rows_read"] for m in manifests),
        "rows_accepted": sum(m["rows_accepted"] for m in manifests),
        "rows_rejected": sum(m["rows_rejected"] for m in manifests),
        "customers": customers,
    }


class _timed:
    def __init__(self, summary: RunSummary, stage: str):
        self.summary, self.stage = summary, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.summary.seconds[self.stage] = round(time.perf_counter() - self.start, 3)


def history_weeks(first: date, last: date, limit: int | None = None) -> list[str]:
    """The weekly partitions from the one holding ``first`` to the one holding ``last``, or
    the last ``limit`` (at least 1) of them."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    start = max(week_key(first), HISTORY_START)
    end = week_key(last)
    weeks = weekly_snapshots.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    return weeks if limit is None else weeks[-limit:]


def week_key(day: date) -> str:
    """The weekly partition (Sunday start) that contains ``day``."""
    return (day - timedelta(days=(day.weekday() + 1) % 7)).isoformat()


def _asset_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    """The metadata values of an asset's materialization in a run, as plain Python values."""
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key == dg.AssetKey(asset):
            return {k: v.value for k, v in materialization.metadata.items()}
    return {}


def _failure_message(result: dg.ExecuteInProcessResult, job_name: str) -> str:
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error is not None:
            return f"{event.step_key}: {data.error.message.strip()}"
    return f"job {job_name} failed (run {result.run_id}); see the Dagster UI for details"
