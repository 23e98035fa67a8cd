"""Lake files of segment assignments, and the frames that become customer_profiles rows."""

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
    result.long.write_parquet(tmp / "long.parquet")
    result.customers.with_columns(model_version=pl.lit(version)).write_parquet(
        tmp / "customers.parquet"
    )
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        for child in old.iterdir():
            child.unlink()
        old.rmdir()


def read_batch(home: QuimbiHome, batch: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    folder = assignment_dir(home) / f"batch_{batch:02d}"
    if not folder.exists():
        raise FileNotFoundError(
            f"{folder}: segment_assignments of batch {batch:02d} is not materialized yet"
        )
    return pl.read_parquet(folder / "long.parquet"), pl.read_parquet(folder / "customers.parquet")


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
