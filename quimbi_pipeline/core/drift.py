"""Drift of customers' fuzzy thumbprints between two snapshots, per axis and per customer.

A snapshot is long: one row per customer and axis with ``customer_id``, ``axis``,
``memberships`` (List(Float64) over the axis's segments, in the same order in both snapshots)
and ``dominant_segment``. Drift on an axis is the Euclidean distance between the two membership
vectors divided by sqrt(2), the largest distance two probability vectors can have, so a full
move from one segment to another is exactly 1.0.
"""

import math

import polars as pl

SEVERITIES: tuple[str, ...] = ("STABLE", "MINOR", "MODERATE", "SIGNIFICANT", "MAJOR")

# Severity of an axis whose segment count changed between snapshots (the model was re-fit).
MODEL_CHANGED = "MODEL_CHANGED"

# Lower bound of each severity above STABLE; a value on a bound belongs to the upper class.
_SEVERITY_FLOORS: tuple[tuple[str, float], ...] = (
    ("MINOR", 0.1),
    ("MODERATE", 0.3),
    ("SIGNIFICANT", 0.5),
    ("MAJOR", 0.7),
)


def severity(drift: float | pl.Expr) -> str | pl.Expr | None:
    """The severity class of a drift value (or an expression of one); null and NaN give null."""
    if isinstance(drift, pl.Expr):
        label = pl.when(drift.is_not_null()).then(pl.lit("STABLE"))
        # Built from the lowest floor up so the highest floor reached wins.
        for name, floor in _SEVERITY_FLOORS:
            label = pl.when(drift >= floor).then(pl.lit(name)).otherwise(label)
        # Polars orders NaN above every number; a NaN drift is unknown, not MAJOR.
        return pl.when(drift.is_nan()).then(pl.lit(None, dtype=pl.String)).otherwise(label)
    if drift is None or math.isnan(drift):
        return None
    return next((n for n, f in reversed(_SEVERITY_FLOORS) if drift >= f), "STABLE")


def axis_drift(
    previous: pl.DataFrame, current: pl.DataFrame, *, days_between: float
) -> pl.DataFrame:
    """Drift per customer and axis present in both snapshots.

    A customer or axis found in only one snapshot, or with null memberships in either, is
    excluded: there is nothing to compare. When the membership vectors differ in length (the
    axis was re-fit with another number of segments) the distance is meaningless, so ``drift``
    and ``velocity`` are null and ``severity`` is ``MODEL_CHANGED``; ``segment_changed`` still
    compares the dominant segment names.

    Args:
        previous: The older snapshot (long frame, see module docstring).
        current: The newer snapshot.
        days_between: Days from the older to the newer snapshot, > 0.

    Returns:
        ``customer_id``, ``axis``, ``previous_segment``, ``current_segment``,
        ``segment_changed``, ``drift``, ``severity``, ``velocity`` (drift per day), in the row
        order of ``previous``.
    """
    if not days_between > 0:
        raise ValueError(f"days_between must be > 0, got {days_between}")
    columns = ["customer_id", "axis", "memberships", "dominant_segment"]
    present = pl.col("memberships").is_not_null()
    # Lazy and order-keeping: the join is the cost here, and a final sort would double it.
    joined = (
        previous.lazy()
        .select(columns)
        .filter(present)
        .join(
            current.lazy().select(columns).filter(present),
            on=["customer_id", "axis"],
            how="inner",
            suffix="_current",
            maintain_order="left",
        )
        .with_columns(
            same_k=pl.col("memberships").list.len() == pl.col("memberships_current").list.len()
        )
    )
    # List arithmetic requires equal lengths, so mismatched rows are nulled out first.
    old = pl.when(pl.col("same_k")).then(pl.col("memberships"))
    new = pl.when(pl.col("same_k")).then(pl.col("memberships_current"))
    distance = (new - old).list.eval(pl.element().pow(2)).list.sum().sqrt()
    drift = pl.min_horizontal(distance / math.sqrt(2), pl.lit(1.0))
    return (
        joined.with_columns(drift=pl.when(pl.col("same_k")).then(drift))
        .select(
            "customer_id",
            "axis",
            pl.col("dominant_segment").alias("previous_segment"),
            pl.col("dominant_segment_current").alias("current_segment"),
            segment_changed=pl.col("dominant_segment").ne_missing(
                pl.col("dominant_segment_current")
            ),
            drift=pl.col("drift"),
            severity=pl.when(pl.col("same_k"))
            .then(severity(pl.col("drift")))
            .otherwise(pl.lit(MODEL_CHANGED)),
            velocity=pl.col("drift") / days_between,
        )
        .collect()
    )


def customer_drift(axis_drift: pl.DataFrame, *, anomaly_threshold: float = 0.5) -> pl.DataFrame:
    """Per customer: mean and max axis drift, segment changes, anomaly flag and severity.

    Axes with a null drift (``MODEL_CHANGED``) are left out of the mean and the max and counted
    in ``axes_compared`` only when they have a drift; a customer with no comparable axis gets a
    null ``overall_drift`` and ``anomaly`` False.
    """
    return (
        axis_drift.group_by("customer_id")
        .agg(
            overall_drift=pl.col("drift").mean(),
            max_axis_drift=pl.col("drift").max(),
            axes_compared=pl.col("drift").count(),
            axes_changed=pl.col("segment_changed").sum(),
        )
        .with_columns(
            anomaly=(pl.col("overall_drift") >= anomaly_threshold).fill_null(False),
            severity=severity(pl.col("overall_drift")),
        )
        .sort("customer_id")
    )


def severity_counts(axis_drift: pl.DataFrame) -> pl.DataFrame:
    """Customers per axis in each severity class, one column per class (``MODEL_CHANGED`` last)."""
    return (
        axis_drift.group_by("axis")
        .agg(
            (pl.col("severity") == name).sum().alias(name) for name in (*SEVERITIES, MODEL_CHANGED)
        )
        .sort("axis")
    )


def transition_counts(axis_drift: pl.DataFrame) -> pl.DataFrame:
    """Customers per axis and (previous, current) dominant segment, changed segments only."""
    return (
        axis_drift.filter(pl.col("segment_changed"))
        .group_by("axis", "previous_segment", "current_segment")
        .agg(customers=pl.len())
        .sort(
            ["axis", "customers", "previous_segment", "current_segment"],
            descending=[False, True, False, False],
        )
    )


def top_movers(customer_drift: pl.DataFrame, n: int = 10) -> pl.DataFrame:
    """The ``n`` customers with the largest overall drift (ties by customer id)."""
    return customer_drift.sort(
        ["overall_drift", "customer_id"], descending=[True, False], nulls_last=True
    ).head(n)
