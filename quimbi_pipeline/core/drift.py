"""Drift of customers' fuzzy thumbprints between two snapshots, per axis and per customer.

Drift on an axis is the Euclidean distance between the two membership vectors divided by
sqrt(2), the largest distance two probability vectors can have, so a full move from one
segment to another is exactly 1.0; it is capped at 1 and rounded to ``DRIFT_DECIMALS``:
memberships are stored to a few decimals, so a move of exactly 0.1 is one, and lands in the
same severity class however the sum was ordered. Per customer, the overall drift is the mean
over the axes and an anomaly is an overall drift of 0.5 or more.

Two shapes of snapshot, the same numbers:

- long (``axis_drift``): one row per customer and axis with ``customer_id``, ``axis``,
  ``memberships`` (List(Float64) over the axis's segments, in the model's order) and
  ``dominant_segment``;
- wide (``thumbprint_drift``, ``core.snapshots.Snapshot.wide``): one row per customer, a
  membership array ``{axis}`` and a dominant segment ``{axis}__segment`` per axis, computed
  column-wise with numpy; a weekly backfill of many customers needs a long frame only for
  the customers it stores (``axis_drift_long``).
"""

import math

import numpy as np
import polars as pl

DRIFT_DECIMALS = 6
# Column suffixes of the wide shapes: snapshot segments, and drift frames.
SEGMENT_SUFFIX = "__segment"
DRIFT_SUFFIX = "__drift"
FROM_SUFFIX = "__from"
TO_SUFFIX = "__to"

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
    drift = pl.min_horizontal(distance / math.sqrt(2), pl.lit(1.0)).round(DRIFT_DECIMALS)
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
    # Through the wide shape, so both shapes average the axes in the same order to the bit.
    return customer_drift_wide(_wide_drift(axis_drift), anomaly_threshold=anomaly_threshold).sort(
        "customer_id"
    )


def _wide_drift(axis_drift: pl.DataFrame) -> pl.DataFrame:
    """An ``axis_drift`` frame in the shape of ``thumbprint_drift`` (absent axes null)."""
    wide = axis_drift.select("customer_id").unique(maintain_order=True)
    for axis in sorted(axis_drift.get_column("axis").unique().to_list()):
        part = axis_drift.filter(pl.col("axis") == axis).select(
            "customer_id",
            pl.col("drift").alias(axis + DRIFT_SUFFIX),
            pl.col("previous_segment").alias(axis + FROM_SUFFIX),
            pl.col("current_segment").alias(axis + TO_SUFFIX),
        )
        wide = wide.join(part, on="customer_id", how="left", maintain_order="left")
    return wide


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


def snapshot_axes(wide: pl.DataFrame) -> list[str]:
    """The axes of a wide snapshot (columns with a ``__segment`` partner), sorted."""
    return sorted(
        c[: -len(SEGMENT_SUFFIX)]
        for c in wide.columns
        if c.endswith(SEGMENT_SUFFIX) and c[: -len(SEGMENT_SUFFIX)] in wide.columns
    )


def thumbprint_drift(
    previous: pl.DataFrame, current: pl.DataFrame, *, refitted: set[str] = frozenset()
) -> pl.DataFrame:
    """Per customer in both wide snapshots, each common axis's drift and dominant segments.

    The same definition as ``axis_drift``: ``{axis}__drift`` is the Euclidean distance of
    the membership vectors over sqrt(2), capped at 1, and null when the axis's segment count
    changed or the axis is in ``refitted`` (its model was re-fit between the snapshots, so the
    memberships refer to other centres); ``{axis}__from`` and ``{axis}__to`` are the dominant
    segments. Customers or axes found in one snapshot only are left out. Rows in the order of
    ``current``.
    """
    axes = [a for a in snapshot_axes(current) if a in set(snapshot_axes(previous))]
    carried = [c for a in axes for c in (a, a + SEGMENT_SUFFIX)]
    ids = previous.get_column("customer_id")
    if current.height >= previous.height and current.get_column("customer_id").head(
        previous.height
    ).equals(ids):
        # The usual week: last week's customers first, in order, and new ones after them.
        joined = pl.concat(
            [
                current.head(previous.height).select("customer_id", *carried),
                previous.select(pl.col(carried).name.suffix("_previous")),
            ],
            how="horizontal",
        )
    else:
        joined = current.select("customer_id", *carried).join(
            previous.select("customer_id", *carried),
            on="customer_id",
            how="inner",
            suffix="_previous",
            maintain_order="left",
        )
    columns: list[pl.Series] = [joined.get_column("customer_id")]
    for axis in axes:
        new = joined.get_column(axis).to_numpy()
        old = joined.get_column(axis + "_previous").to_numpy()
        if new.shape[1] == old.shape[1] and axis not in refitted:
            squares = (new - old) ** 2
            # Summed term by term, in order, as axis_drift's list sum does.
            total = squares[:, 0].copy()
            for j in range(1, squares.shape[1]):
                total += squares[:, j]
            capped = np.minimum(np.sqrt(total) / math.sqrt(2), 1.0)
            drift = pl.Series(capped, dtype=pl.Float64).round(DRIFT_DECIMALS)
        else:
            drift = pl.Series([None] * joined.height, dtype=pl.Float64)
        columns += [
            drift.alias(axis + DRIFT_SUFFIX),
            joined.get_column(axis + SEGMENT_SUFFIX + "_previous").alias(axis + FROM_SUFFIX),
            joined.get_column(axis + SEGMENT_SUFFIX).alias(axis + TO_SUFFIX),
        ]
    return pl.DataFrame(columns)


def drift_axes(drift: pl.DataFrame) -> list[str]:
    """The axes of a ``thumbprint_drift`` frame."""
    return sorted(c[: -len(DRIFT_SUFFIX)] for c in drift.columns if c.endswith(DRIFT_SUFFIX))


def customer_drift_wide(drift: pl.DataFrame, *, anomaly_threshold: float = 0.5) -> pl.DataFrame:
    """``customer_drift`` of a ``thumbprint_drift`` frame, in its row order."""
    axes = drift_axes(drift)
    if not axes:
        return drift.select("customer_id").with_columns(
            overall_drift=pl.lit(None, pl.Float64),
            max_axis_drift=pl.lit(None, pl.Float64),
            axes_compared=pl.lit(0, pl.UInt32),
            axes_changed=pl.lit(0, pl.UInt32),
            anomaly=pl.lit(False),
            severity=pl.lit(None, pl.String),
        )
    values = [pl.col(a + DRIFT_SUFFIX) for a in axes]
    changed = [pl.col(a + FROM_SUFFIX).ne_missing(pl.col(a + TO_SUFFIX)) for a in axes]
    compared = pl.sum_horizontal(v.is_not_null() for v in values)
    return drift.select(
        "customer_id",
        overall_drift=pl.when(compared > 0).then(pl.mean_horizontal(values).round(DRIFT_DECIMALS)),
        max_axis_drift=pl.max_horizontal(values),
        axes_compared=compared.cast(pl.UInt32),
        axes_changed=pl.sum_horizontal(changed).cast(pl.UInt32),
    ).with_columns(
        anomaly=(pl.col("overall_drift") >= anomaly_threshold).fill_null(False),
        severity=severity(pl.col("overall_drift")),
    )


def axis_drift_long(drift: pl.DataFrame, *, days_between: float) -> pl.DataFrame:
    """A ``thumbprint_drift`` frame as ``axis_drift`` returns it (one row per customer, axis)."""
    if not days_between > 0:
        raise ValueError(f"days_between must be > 0, got {days_between}")
    parts = [
        drift.select(
            "customer_id",
            pl.lit(axis).alias("axis"),
            pl.col(axis + FROM_SUFFIX).alias("previous_segment"),
            pl.col(axis + TO_SUFFIX).alias("current_segment"),
            pl.col(axis + FROM_SUFFIX)
            .ne_missing(pl.col(axis + TO_SUFFIX))
            .alias("segment_changed"),
            pl.col(axis + DRIFT_SUFFIX).alias("drift"),
            pl.when(pl.col(axis + DRIFT_SUFFIX).is_not_null())
            .then(severity(pl.col(axis + DRIFT_SUFFIX)))
            .otherwise(pl.lit(MODEL_CHANGED))
            .alias("severity"),
            (pl.col(axis + DRIFT_SUFFIX) / days_between).alias("velocity"),
        )
        for axis in drift_axes(drift)
    ]
    if parts:
        return pl.concat(parts)
    return pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "axis": pl.String,
            "previous_segment": pl.String,
            "current_segment": pl.String,
            "segment_changed": pl.Boolean,
            "drift": pl.Float64,
            "severity": pl.String,
            "velocity": pl.Float64,
        }
    )
