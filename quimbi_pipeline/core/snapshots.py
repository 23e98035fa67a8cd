"""A customer "thumbprint" at a date: fuzzy memberships on every axis, from as-of features."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from quimbi_pipeline.core.assignment import assign_axes, json_map, long_frame
from quimbi_pipeline.core.features import compute_customer_features
from quimbi_pipeline.core.segmentation import AxisModel


@dataclass
class Snapshot:
    snapshot_date: date
    # customer_id, axis, dominant_segment, memberships, strength, distance
    long: pl.DataFrame
    # customer_id, thumbprint (JSON), dominant_segments (JSON), churn_risk_score,
    # total_orders, lifetime_value
    customers: pl.DataFrame


def end_of_day(day: date) -> datetime:
    """The last instant of ``day``: a snapshot of a day holds every order of that day."""
    return datetime.combine(day, datetime.min.time()) + timedelta(days=1, microseconds=-1)


def take_snapshot(
    orders: pl.DataFrame | pl.LazyFrame,
    tickets: pl.DataFrame | pl.LazyFrame | None,
    snapshot_date: date,
    models: dict[str, AxisModel],
    axis_columns: dict[str, list[str]],
) -> Snapshot:
    """Features as of the end of ``snapshot_date``, assigned with the given (current) models.

    Customers whose first order is after the date are absent; the models are not re-fitted,
    so thumbprints of different dates are comparable.
    """
    as_of = end_of_day(snapshot_date)
    lines = orders.lazy().filter(pl.col("ordered_at") <= as_of)
    if lines.select(pl.len()).collect().item() == 0:
        return Snapshot(snapshot_date, long_frame(pl.Series([], dtype=pl.String), {}), _empty())
    # Tickets go in uncut: whether the shop has tickets at all decides the support axes'
    # source, which must be the same in every snapshot; features cut them at as_of.
    features = compute_customer_features(lines, tickets, as_of=as_of).frame
    results = assign_axes(features, models, axis_columns)
    ids = features["customer_id"]
    thumb = {
        axis: pl.Series(r.memberships).cast(pl.List(pl.Float64)) for axis, r in results.items()
    }
    dominant = {
        axis: pl.Series(r.names[r.dominant], dtype=pl.String) for axis, r in results.items()
    }
    customers = features.select(
        "customer_id", "churn_risk_score", "total_orders", "lifetime_value"
    ).with_columns(
        thumbprint=json_map(thumb, len(ids)),
        dominant_segments=json_map(dominant, len(ids)),
    )
    return Snapshot(snapshot_date, long_frame(ids, results), customers)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "churn_risk_score": pl.Float64,
            "total_orders": pl.Float64,
            "lifetime_value": pl.Float64,
            "thumbprint": pl.String,
            "dominant_segments": pl.String,
        }
    )
