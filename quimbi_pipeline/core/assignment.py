"""Assignment of a batch of customers to every axis's stored model, and their profile columns.

The JSON columns of a profile:

- ``dominant_segments``: ``{axis: segment}``, the segment with the highest membership.
- ``membership_strengths``: ``{axis: membership of the dominant segment}``.
- ``fuzzy_memberships``: ``{axis: {segment: membership}}``, the whole fuzzy vector.
- ``segment_memberships``: ``{axis: [segments]}``, every segment the customer belongs to with
  membership >= ``BELONGS_THRESHOLD`` (dominant first), for containment queries such as
  ``segment_memberships @> '{"price_sensitivity": ["deal_hunter"]}'``.

Axes without an active model (not applicable) are absent from every map.
"""

import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from quimbi_pipeline.core.archetypes import archetype_frame
from quimbi_pipeline.core.segmentation import AxisModel, assign_to_centroids

BELONGS_THRESHOLD = 0.2
# Memberships are stored to 4 decimals: finer digits are noise and cost JSONB space.
DECIMALS = 4


@dataclass
class BatchAssignment:
    # customer_id, axis, dominant_segment, memberships (List[f64]), strength, distance
    long: pl.DataFrame
    # customer_id, overall_confidence, archetype_id and the four JSON text columns
    customers: pl.DataFrame


def customer_batch(customer_ids: pl.Series, batches: int) -> pl.Series:
    """A stable batch number per customer id: CRC-32 of its UTF-8 bytes modulo ``batches``.

    Stable across processes, machines and library versions (unlike polars' own hash), so a
    customer always lands in the same partition.
    """
    values = [zlib.crc32(cid.encode()) % batches for cid in customer_ids.to_list()]
    return pl.Series("batch", values, dtype=pl.Int32)


@dataclass
class AxisResult:
    names: np.ndarray  # segment names of the axis, in model order
    memberships: np.ndarray  # (n, k), rounded to DECIMALS
    dominant: np.ndarray  # (n,) index into names
    strength: np.ndarray
    distance: np.ndarray


def assign_axes(
    features: pl.DataFrame,
    models: dict[str, AxisModel],
    axis_columns: dict[str, list[str]],
) -> dict[str, AxisResult]:
    """Assigns the customers of ``features`` on every axis in ``models`` (vectorized per axis).

    Args:
        features: one row per customer with ``customer_id`` and the axis feature columns.
        models: the active model of each applicable axis.
        axis_columns: the feature columns of each axis, in the model's feature order.
    """
    results = {}
    for axis, model in sorted(models.items()):
        matrix = features.select(axis_columns[axis]).to_numpy().astype(np.float64, copy=False)
        result = assign_to_centroids(model, matrix)
        results[axis] = AxisResult(
            names=np.asarray(model.segment_names),
            memberships=np.round(result.memberships, DECIMALS),
            dominant=result.dominant,
            strength=np.round(result.strength, DECIMALS),
            distance=result.distance,
        )
    return results


def long_frame(ids: pl.Series, results: dict[str, AxisResult]) -> pl.DataFrame:
    """One row per customer and axis: dominant segment, membership vector, strength, distance."""
    parts = [
        pl.DataFrame(
            {
                "customer_id": ids,
                "axis": pl.Series([axis] * len(ids), dtype=pl.String),
                "dominant_segment": pl.Series(r.names[r.dominant], dtype=pl.String),
                "memberships": pl.Series(r.memberships).cast(pl.List(pl.Float64)),
                "strength": pl.Series(r.strength, dtype=pl.Float64),
                "distance": pl.Series(r.distance, dtype=pl.Float64),
            }
        )
        for axis, r in results.items()
    ]
    return pl.concat(parts) if parts else _empty_long()


def json_map(columns: dict[str, pl.Series], height: int) -> pl.Series:
    """Per row, a JSON object with one key per entry of ``columns`` (axis -> value)."""
    if not columns:
        return pl.Series([None] * height, dtype=pl.String)
    frame = pl.DataFrame([c.alias(name) for name, c in columns.items()])
    return frame.select(pl.struct(pl.all()).struct.json_encode()).to_series()


def assign_batch(
    features: pl.DataFrame,
    models: dict[str, AxisModel],
    axis_columns: dict[str, list[str]],
) -> BatchAssignment:
    """Assigns a batch and builds its long table and per-customer profile columns."""
    ids = features["customer_id"]
    results = assign_axes(features, models, axis_columns)
    dominant = {a: pl.Series(r.names[r.dominant], dtype=pl.String) for a, r in results.items()}
    strength = {a: pl.Series(r.strength, dtype=pl.Float64) for a, r in results.items()}
    fuzzy = {
        a: pl.DataFrame(r.memberships, schema=list(r.names), orient="row").to_struct(a)
        for a, r in results.items()
    }
    belongs = {a: _belonging(r) for a, r in results.items()}
    long = long_frame(ids, results)
    customers = pl.DataFrame({"customer_id": ids}).with_columns(
        overall_confidence=(
            pl.Series(np.mean([r.strength for r in results.values()], axis=0))
            if results
            else pl.lit(None, pl.Float64)
        ),
        dominant_segments=json_map(dominant, len(ids)),
        membership_strengths=json_map(strength, len(ids)),
        fuzzy_memberships=json_map(fuzzy, len(ids)),
        segment_memberships=json_map(belongs, len(ids)),
    )
    archetypes = archetype_frame(long.select("customer_id", "axis", "dominant_segment"))
    customers = customers.join(
        archetypes.select(
            "customer_id", "archetype_id", pl.col("signature").alias("archetype_signature")
        ),
        on="customer_id",
        how="left",
    )
    return BatchAssignment(long=long, customers=customers)


def _belonging(result: AxisResult) -> pl.Series:
    """Segments with membership >= threshold, dominant first (it always qualifies)."""
    per_segment = pl.DataFrame(result.memberships, schema=list(result.names), orient="row")
    listed = per_segment.with_columns(
        _dominant=pl.Series(result.names[result.dominant], dtype=pl.String)
    ).select(
        pl.concat_list(
            pl.col("_dominant"),
            *[pl.when(pl.col(n) >= BELONGS_THRESHOLD).then(pl.lit(n)) for n in result.names],
        )
        .list.drop_nulls()
        .list.unique(maintain_order=True)
    )
    return listed.to_series()


def _empty_long() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "axis": pl.String,
            "dominant_segment": pl.String,
            "memberships": pl.List(pl.Float64),
            "strength": pl.Float64,
            "distance": pl.Float64,
        }
    )
