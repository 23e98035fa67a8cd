"""Frames for the drift_reports table, and small markdown renderings for UI metadata."""

from datetime import date

import polars as pl


def drift_rows(
    by_axis: pl.DataFrame,
    by_customer: pl.DataFrame,
    day: date,
    previous_day: date,
    min_drift: float,
) -> pl.DataFrame:
    """drift_reports rows: customers whose largest axis drift reaches ``min_drift``."""
    movers = by_customer.filter(pl.col("max_axis_drift") >= min_drift)
    per_axis = (
        by_axis.join(movers.select("customer_id"), on="customer_id", how="semi")
        .with_columns(
            entry=pl.struct(
                pl.col("drift").round(4),
                "severity",
                pl.col("velocity").round(6),
                pl.col("previous_segment").alias("from"),
                pl.col("current_segment").alias("to"),
                pl.col("segment_changed").alias("changed"),
            )
        )
        .pivot(on="axis", index="customer_id", values="entry")
    )
    axes = [c for c in per_axis.columns if c != "customer_id"]
    per_axis = per_axis.select(
        "customer_id", pl.struct(axes).struct.json_encode().alias("axis_drift")
    )
    return movers.join(per_axis, on="customer_id").select(
        "customer_id",
        pl.lit(day).alias("report_date"),
        pl.lit(previous_day).alias("previous_date"),
        pl.col("overall_drift").fill_null(0.0),
        pl.col("max_axis_drift").fill_null(0.0),
        pl.col("severity").fill_null("MODEL_CHANGED"),
        "anomaly",
        pl.col("axes_changed").cast(pl.Int32),
        "axis_drift",
        pl.lit(None, pl.String).alias("model_version"),
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
