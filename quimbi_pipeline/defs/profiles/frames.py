"""Lake files of segment assignments, and the frames that become customer_profiles rows."""

from dataclasses import dataclass, fields

import polars as pl

from quimbi_pipeline.core.assignment import BatchAssignment
from quimbi_pipeline.core.axes import METRIC_COLUMNS
from quimbi_pipeline.db.profiles_store import PROFILE_COLUMNS
from quimbi_pipeline.home import QuimbiHome

NO_ORDERS_REASON = "known only from support tickets: no orders to segment"


def assignment_dir(home: QuimbiHome):
    return home.asset_dir("segment_assignments")


def write_batch(home: QuimbiHome, batch: int, result: BatchAssignment, version: str) -> None:
    """Writes one batch's long and per-customer tables; the folder is swapped in whole."""
    folder = assignment_dir(home) / f"batch_{batch:02d}"
    tmp = folder.with_name(f".{folder.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    # lz4: these files are rewritten by every run and read once; zstd took twice the time.
    # No statistics: the files are always read whole, and the min/max of a batch's 200 MB of
    # JSON text was a third of the time of writing customers.parquet.
    result.long.write_parquet(tmp / "long.parquet", compression="lz4", statistics=False)
    result.customers.with_columns(model_version=pl.lit(version)).write_parquet(
        tmp / "customers.parquet", compression="lz4", statistics=False
    )
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        for child in old.iterdir():
            child.unlink()
        old.rmdir()


def read_batch(
    home: QuimbiHome, batch: int, long_columns: list[str] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A batch's long table (only ``long_columns`` when given) and per-customer table."""
    folder = assignment_dir(home) / f"batch_{batch:02d}"
    if not folder.exists():
        raise FileNotFoundError(
            f"{folder}: segment_assignments of batch {batch:02d} is not materialized yet"
        )
    long = pl.read_parquet(folder / "long.parquet", columns=long_columns)
    return long, pl.read_parquet(folder / "customers.parquet")


def profile_frame(
    batch: int,
    customers: pl.DataFrame,
    features: pl.DataFrame,
    ticket_only: pl.DataFrame,
    store_id: str = "default",
) -> pl.DataFrame:
    """customer_profiles rows of one batch: segmented customers plus ticket-only contacts."""
    version = customers["model_version"][0] if customers.height else None
    segmented = customers.join(
        features.select("customer_id", *METRIC_COLUMNS), on="customer_id", how="left"
    ).with_columns(
        segmentation_status=pl.lit("segmented"),
        status_reason=pl.lit(None, pl.String),
    )
    contacts = (
        ticket_only.filter(pl.col("batch") == batch)
        .select("customer_id")
        .with_columns(
            segmentation_status=pl.lit("no_orders"),
            status_reason=pl.lit(NO_ORDERS_REASON),
            model_version=pl.lit(version, pl.String),
        )
    )
    frame = pl.concat([segmented, contacts], how="diagonal_relaxed")
    return (
        frame.with_columns(
            store_id=pl.lit(store_id),
            customer_batch=pl.lit(batch, pl.Int32),
            total_orders=pl.col("total_orders").cast(pl.Int32),
        )
        .select(PROFILE_COLUMNS)
        .sort("customer_id")
    )


def segment_distribution(parts: list[pl.DataFrame]) -> str:
    """Markdown: customers per dominant segment on each axis."""
    if not parts or not any(p.height for p in parts):
        return "no segmented customers"
    counts = (
        pl.concat(parts)
        .group_by("axis", "dominant_segment")
        .agg(pl.col("len").sum())
        .sort("axis", "len", descending=[False, True])
    )
    totals = counts.group_by("axis").agg(pl.col("len").sum().alias("total"))
    counts = counts.join(totals, on="axis")
    lines = ["| axis | segment | customers | share |", "|---|---|---|---|"] + [
        f"| {r['axis']} | {r['dominant_segment']} | {r['len']} | {r['len'] / r['total']:.1%} |"
        for r in counts.iter_rows(named=True)
    ]
    return "\n".join(lines)


@dataclass
class BatchOutcome:
    """What writing one batch of profiles did, for the asset's metadata and check."""

    rows_in_batch: int = 0
    rows_upserted: int = 0
    rows_removed: int = 0
    no_orders: int = 0
    segmented: int = 0
    # Segmented customers with a segment on every axis that has a model.
    complete: int = 0
    distribution: pl.DataFrame | None = None

    @classmethod
    def of(
        cls,
        counts: dict[str, int],
        frame: pl.DataFrame,
        long: pl.DataFrame,
        with_orders: pl.Series,
        axes: set[str],
    ) -> "BatchOutcome":
        """The outcome of one batch.

        Args:
            counts: what ``upsert_profile_batch`` returned.
            frame: the profile rows written.
            long: the batch's assignments, one row per customer and axis.
            with_orders: the ids of the batch's customers in the current features.
            axes: the axes with an active model, on which every customer needs a segment.
        """
        return cls(
            rows_in_batch=counts["rows_in_batch"],
            rows_upserted=counts["rows_upserted"],
            rows_removed=counts["rows_removed"],
            no_orders=frame.filter(pl.col("segmentation_status") == "no_orders").height,
            segmented=with_orders.len(),
            complete=covered_customers(long, with_orders, axes),
            distribution=long.group_by("axis", "dominant_segment").len(),
        )

    @classmethod
    def combine(cls, outcomes: list["BatchOutcome"]) -> "BatchOutcome":
        counts = [f.name for f in fields(cls) if f.name != "distribution"]
        return cls(**{name: sum(getattr(o, name) for o in outcomes) for name in counts})


def covered_customers(long: pl.DataFrame, customer_ids: pl.Series, axes: set[str]) -> int:
    """How many of ``customer_ids`` have a dominant segment on every axis of ``axes``."""
    if not axes:
        return customer_ids.len()
    covered = (
        long.filter(pl.col("axis").is_in(list(axes)) & pl.col("dominant_segment").is_not_null())
        .group_by("customer_id")
        .agg(pl.col("axis").n_unique().alias("axes"))
        .filter(pl.col("axes") == len(axes))
    )
    return customer_ids.to_frame("customer_id").join(covered, on="customer_id", how="semi").height
