"""Rows of the temporal_snapshots and drift_reports tables, their writer, and UI markdown."""

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import date

import polars as pl
import psycopg

from quimbi_pipeline.core.drift import DRIFT_SUFFIX
from quimbi_pipeline.core.snapshots import Snapshot
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.writes import replace_rows

SNAPSHOT_COLUMNS = {
    "customer_id": pl.String,
    "snapshot_date": pl.Date,
    "snapshot_type": pl.String,
    "thumbprint": pl.String,
    "dominant_segments": pl.String,
    "churn_risk_score": pl.Float64,
    "total_orders": pl.Int32,
    "lifetime_value": pl.Float64,
    "model_version": pl.String,
}


def snapshot_rows(snapshot: Snapshot | None, snapshot_type: str, version: str) -> pl.DataFrame:
    """temporal_snapshots rows of a snapshot (none for None), thumbprints as JSON text."""
    if snapshot is None:
        return pl.DataFrame(schema=SNAPSHOT_COLUMNS)
    return snapshot.thumbprints().select(
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


DRIFT_COLUMNS = {
    "customer_id": pl.String,
    "report_date": pl.Date,
    "previous_date": pl.Date,
    "overall_drift": pl.Float64,
    "max_axis_drift": pl.Float64,
    "severity": pl.String,
    "anomaly": pl.Boolean,
    "axes_changed": pl.Int32,
    "axis_drift": pl.String,
    "model_version": pl.String,
}


def drift_report(by_axis: pl.DataFrame, by_customer: pl.DataFrame) -> pl.DataFrame:
    """The lake's drift report: per customer the summary and every axis's drift."""
    axes = [c for c in by_axis.columns if c.endswith(DRIFT_SUFFIX)]
    return by_customer.join(
        by_axis.select("customer_id", *axes), on="customer_id", how="left", maintain_order="left"
    )


def drift_rows(
    by_axis: pl.DataFrame,
    by_customer: pl.DataFrame,
    day: date,
    previous_day: date,
    min_drift: float,
    model_version: str | None = None,
) -> pl.DataFrame:
    """drift_reports rows: customers whose largest axis drift reaches ``min_drift``.

    ``axis_drift`` holds the axes that moved (MINOR or worse, a changed dominant segment, or a
    changed model); the customer's other axes were STABLE.
    """
    movers = by_customer.filter(pl.col("max_axis_drift") >= min_drift)
    if movers.height == 0:
        return pl.DataFrame(schema=DRIFT_COLUMNS)
    # Keys in jsonb's storage order (core.assignment.jsonb_sort_key: shorter first, then
    # bytewise), as in the profiles: the server's sort of each object's keys has nothing to do.
    entry = pl.struct(
        pl.col("current_segment").alias("to"),
        pl.col("previous_segment").alias("from"),
        pl.col("drift").round(4),
        pl.col("segment_changed").alias("changed"),
        "severity",
        pl.col("velocity").round(6),
    ).struct.json_encode()
    per_axis = (
        by_axis.join(movers.select("customer_id"), on="customer_id", how="semi")
        .filter((pl.col("severity") != "STABLE") | pl.col("segment_changed"))
        .group_by("customer_id")
        .agg(
            axis_drift=pl.lit("{")
            + pl.concat_str(pl.lit('"'), "axis", pl.lit('":'), entry)
            .sort_by(pl.col("axis").str.len_bytes(), "axis")
            .str.join(",")
            + pl.lit("}")
        )
    )
    return movers.join(per_axis, on="customer_id", how="left").select(
        "customer_id",
        pl.lit(day).alias("report_date"),
        pl.lit(previous_day).alias("previous_date"),
        pl.col("overall_drift").fill_null(0.0),
        pl.col("max_axis_drift").fill_null(0.0),
        pl.col("severity").fill_null("MODEL_CHANGED"),
        "anomaly",
        pl.col("axes_changed").cast(pl.Int32),
        pl.col("axis_drift").fill_null("{}"),
        pl.lit(model_version, pl.String).alias("model_version"),
    )


def markdown(frame: pl.DataFrame) -> str:
    """A frame as a markdown table (floats to 3 decimals)."""
    if frame.height == 0:
        return "(none)"
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    rows = [
        "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([header, rule, *rows])


class RowWriter(AbstractContextManager):
    """``replace_rows`` calls run in order on a worker thread with its own connection.

    PostgreSQL then parses one date's rows while the caller computes the next date; at most
    ``pending`` calls wait, so memory stays bounded. Several threads may submit. Leaving the
    block waits for every call and raises the first error.
    """

    def __init__(self, database_url: str, pending: int = 2) -> None:
        self._url = database_url
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="row-writer")
        self._conn: psycopg.Connection | None = None
        self._futures: list[Future[int]] = []
        self._pending = pending
        # Submitters take turns: the queue and its bound are shared.
        self._lock = threading.Lock()

    def submit(
        self,
        table: str,
        rows: Callable[[], pl.DataFrame],
        where: Mapping[str, object],
        lock_key: int,
    ) -> None:
        """Queues one delete-then-insert of the frame ``rows()`` builds on the worker thread
        (waits while ``pending`` are queued)."""
        with self._lock:
            waiting = [f for f in self._futures if not f.done()]
            while len(waiting) >= self._pending:
                waiting.pop(0).result()
            self._futures.append(self._pool.submit(self._write, table, rows, where, lock_key))

    def rows_written(self) -> int:
        """Rows inserted by every call so far (waits for them)."""
        return sum(f.result() for f in self._futures)

    def _write(
        self,
        table: str,
        rows: Callable[[], pl.DataFrame],
        where: Mapping[str, object],
        lock_key: int,
    ) -> int:
        if self._conn is None:
            self._conn = connect(self._url)
        return replace_rows(self._conn, table, rows(), where, lock_key=lock_key)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def __exit__(self, *exc: object) -> None:
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.submit(self._close).result()
            self._pool.shutdown(wait=True)
