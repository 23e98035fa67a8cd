"""A customer "thumbprint" at a date: fuzzy memberships on every axis, from as-of features.

``take_snapshot`` computes one date from scratch. ``SnapshotSeries`` computes a rising
sequence of dates, as a backfill of weekly snapshots does: features come from
``FeatureTimeline`` and only the customers whose features on an axis changed since the previous
date are assigned again on that axis (assignment is row by row, so the others keep their
memberships); its snapshots equal ``take_snapshot``'s (tested).

A snapshot has three shapes: ``wide()`` for the lake (one row per customer, one membership
array and one dominant segment per axis), ``thumbprints()`` for PostgreSQL (JSON maps) and
``long()`` (one row per customer and axis).
"""

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TypeVar

import numpy as np
import polars as pl

from quimbi_pipeline.core.assignment import (
    DECIMALS,
    AxisResult,
    assign_axes,
    long_frame,
    model_columns,
)
from quimbi_pipeline.core.drift import SEGMENT_SUFFIX
from quimbi_pipeline.core.features import compute_customer_features
from quimbi_pipeline.core.features_asof import FeatureTimeline
from quimbi_pipeline.core.segmentation import AxisModel, assign_to_centroids

Frame = pl.DataFrame | pl.LazyFrame
CUSTOMER_COLUMNS = ("customer_id", "churn_risk_score", "total_orders", "lifetime_value")
# A date, or anything that stands for one in order (a partition key).
D = TypeVar("D")


@dataclass
class Snapshot:
    snapshot_date: date
    # customer_id, churn_risk_score, total_orders, lifetime_value; sorted by customer_id
    customers: pl.DataFrame
    # Every assigned axis, row i being customer i of ``customers``; memberships rounded to
    # the profiles' DECIMALS, as stored, so drift reads what PostgreSQL holds.
    axes: dict[str, AxisResult]

    def wide(self) -> pl.DataFrame:
        """The customers with, per axis, ``{axis}`` (membership array in the model's segment
        order) and ``{axis}__segment`` (dominant segment)."""
        columns = []
        for axis, result in sorted(self.axes.items()):
            columns.append(pl.Series(axis, result.memberships))
            columns.append(result.dominant_names().alias(axis + SEGMENT_SUFFIX))
        return self.customers.with_columns(columns)

    def thumbprints(self) -> pl.DataFrame:
        """The customers with ``thumbprint`` ({axis: memberships}) and ``dominant_segments``
        ({axis: segment}) as JSON text.

        Built column-wise: memberships are multiples of 10**-DECIMALS, so each is the text of
        its multiple picked from a table, and one concatenation per map makes the rows.
        """
        if not self.axes:
            empty = pl.lit(None, dtype=pl.String)
            return self.customers.with_columns(thumbprint=empty, dominant_segments=empty)
        scale = 10**DECIMALS
        texts = pl.Series([repr(i / scale) for i in range(scale + 1)], dtype=pl.String)
        frame: dict[str, pl.Series] = {}
        thumb: list[pl.Expr] = []
        dominant: list[pl.Expr] = []
        for a, (axis, result) in enumerate(sorted(self.axes.items())):
            key = ("," if a else "{") + json.dumps(axis) + ":"
            codes = np.rint(result.memberships * scale).astype(np.int64)
            for j in range(codes.shape[1]):
                frame[f"m{a}_{j}"] = texts.gather(codes[:, j])
                thumb += [pl.lit(key + "[" if j == 0 else ","), pl.col(f"m{a}_{j}")]
            thumb.append(pl.lit("]"))
            quoted = pl.Series([json.dumps(n) for n in result.names], dtype=pl.String)
            frame[f"d{a}"] = quoted.gather(result.dominant)
            dominant += [pl.lit(key), pl.col(f"d{a}")]
        built = pl.DataFrame(frame).select(
            thumbprint=pl.concat_str([*thumb, pl.lit("}")]),
            dominant_segments=pl.concat_str([*dominant, pl.lit("}")]),
        )
        return pl.concat([self.customers, built], how="horizontal")

    def long(self) -> pl.DataFrame:
        """customer_id, axis, dominant_segment, memberships, strength, distance."""
        return long_frame(self.customers.get_column("customer_id"), self.axes)


def end_of_day(day: date) -> datetime:
    """The last instant of ``day``: a snapshot of a day holds every order of that day."""
    return datetime.combine(day, datetime.min.time()) + timedelta(days=1, microseconds=-1)


def take_snapshot(
    orders: Frame,
    tickets: Frame | None,
    snapshot_date: date,
    models: dict[str, AxisModel],
    axis_columns: dict[str, list[str]] | None = None,
) -> Snapshot:
    """Features as of the end of ``snapshot_date``, assigned with the given (current) models.

    Customers whose first order is after the date are absent; the models are not re-fitted,
    so thumbprints of different dates are comparable.
    """
    as_of = end_of_day(snapshot_date)
    # Tickets go in uncut: whether the shop has tickets at all decides the support axes'
    # source, which must be the same in every snapshot; features cut them at as_of.
    features = compute_customer_features(orders, tickets, as_of=as_of).frame
    if features.height == 0:
        return Snapshot(snapshot_date, _customers(features), {})
    results = assign_axes(features, models, axis_columns)
    return Snapshot(
        snapshot_date, _customers(features), {a: _rounded(r) for a, r in results.items()}
    )


@dataclass(frozen=True)
class _Rows:
    """Previous rows of the current customers: the first ``prefix`` rows unchanged, or
    ``rows[i]`` (-1 for a new customer)."""

    prefix: int
    rows: np.ndarray | None

    @cached_property
    def had(self) -> np.ndarray:
        """The current rows of customers who had a previous row."""
        return np.flatnonzero(self.rows >= 0)

    @cached_property
    def sources(self) -> np.ndarray | None:
        """Their previous rows, or None when those are 0, 1, 2, ... (customers were added
        between the previous ones, none left and none moved: a rising series' usual week)."""
        source = self.rows[self.had]
        return None if np.array_equal(source, np.arange(source.size)) else source

    @cached_property
    def gather(self) -> np.ndarray:
        """Per current row the previous row to copy (0 for a new customer, who is assigned
        afresh anyway)."""
        return np.where(self.rows >= 0, self.rows, 0)


class SnapshotSeries:
    """Snapshots of one order history at rising dates, with fixed models (see module doc)."""

    def __init__(
        self,
        orders: Frame,
        tickets: Frame | None,
        models: dict[str, AxisModel],
        axis_columns: dict[str, list[str]] | None = None,
    ) -> None:
        self._features = FeatureTimeline(orders, tickets)
        self._models = dict(sorted(models.items()))
        self._columns = axis_columns or {a: model_columns(m) for a, m in models.items()}
        # The previous date's customer ids, feature matrices and results, per axis.
        self._ids: pl.Series | None = None
        self._matrices: dict[str, np.ndarray] = {}
        self._results: dict[str, AxisResult] = {}

    def fork(self) -> "SnapshotSeries":
        """A series of the same history and models with no date taken yet, for another
        thread: it shares the prepared history (``FeatureTimeline.fork``), not the state."""
        twin = copy.copy(self)
        twin._features = self._features.fork()
        twin._ids, twin._matrices, twin._results = None, {}, {}
        return twin

    def take(self, snapshot_date: date) -> Snapshot:
        """The snapshot at the end of ``snapshot_date`` (equal to ``take_snapshot``'s)."""
        features = self._features.frame_at(end_of_day(snapshot_date))
        if features.height == 0:
            self._ids = None
            return Snapshot(snapshot_date, _customers(features), {})
        ids = features.get_column("customer_id")
        previous = self._previous_rows(ids)
        columns = sorted({c for axis in self._models for c in self._columns[axis]})
        position = {c: i for i, c in enumerate(columns)}
        values = features.select(columns).to_numpy(order="c").astype(np.float64, copy=False)
        results: dict[str, AxisResult] = {}
        for axis, model in self._models.items():
            matrix = values[:, [position[c] for c in self._columns[axis]]]
            results[axis] = self._assign(axis, model, matrix, previous)
            self._matrices[axis] = matrix
        self._ids, self._results = ids, results
        return Snapshot(snapshot_date, _customers(features), results)

    def _previous_rows(self, ids: pl.Series) -> _Rows | None:
        """Where each customer was in the previous date's results; None: no previous date."""
        if self._ids is None:
            return None
        if ids.len() >= self._ids.len() and ids.head(self._ids.len()).equals(self._ids):
            # The usual week: the same customers first, new ones (later ids) after them.
            return _Rows(self._ids.len(), None)
        before = pl.DataFrame({"customer_id": self._ids}).with_row_index("row")
        rows = (
            pl.DataFrame({"customer_id": ids})
            .join(before, on="customer_id", how="left", maintain_order="left")
            .get_column("row")
            .fill_null(-1)
            .cast(pl.Int64)
            .to_numpy()
        )
        return _Rows(0, rows)

    def _assign(
        self, axis: str, model: AxisModel, matrix: np.ndarray, previous: _Rows | None
    ) -> AxisResult:
        known = self._results.get(axis)
        if previous is None or known is None:
            return assign_axes_matrix(model, matrix)
        arrays = (known.memberships, known.dominant, known.strength, known.distance)
        changed = np.ones(matrix.shape[0], dtype=bool)
        before = self._matrices[axis]
        if previous.rows is None:
            n = previous.prefix
            changed[:n] = _rows_differ(matrix[:n], before)
            outputs = [np.empty((matrix.shape[0], *a.shape[1:]), dtype=a.dtype) for a in arrays]
            for out, values in zip(outputs, arrays, strict=True):
                out[:n] = values
        elif previous.had.size:
            # np.take: several times faster than fancy indexing on rows.
            had, sources = previous.had, previous.sources
            old_rows = before if sources is None else np.take(before, sources, axis=0)
            changed[had] = _rows_differ(np.take(matrix, had, axis=0), old_rows)
            outputs = [np.take(values, previous.gather, axis=0) for values in arrays]
        else:
            # None of the previous date's customers is left.
            return assign_axes_matrix(model, matrix)
        rows = np.flatnonzero(changed)
        if rows.size:
            fresh = assign_axes_matrix(model, np.take(matrix, rows, axis=0))
            fresh_arrays = (fresh.memberships, fresh.dominant, fresh.strength, fresh.distance)
            for out, values in zip(outputs, fresh_arrays, strict=True):
                out[rows] = values
        return AxisResult(known.names, *outputs)


def _rows_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, whether two matrices differ in any bit: their values compared as integers,
    column by column (five times faster than one comparison of whole rows as bytes)."""
    bits = np.dtype(f"u{a.dtype.itemsize}")
    a, b = np.ascontiguousarray(a).view(bits), np.ascontiguousarray(b).view(bits)
    differ = np.zeros(a.shape[0], dtype=bool)
    for j in range(a.shape[1]):
        differ |= a[:, j] != b[:, j]
    return differ


def assign_axes_matrix(model: AxisModel, matrix: np.ndarray) -> AxisResult:
    """``assign_axes`` for one axis's feature matrix, memberships rounded as stored."""
    result = assign_to_centroids(model, matrix)
    return _rounded(
        AxisResult(
            names=list(model.segment_names),
            memberships=result.memberships,
            dominant=result.dominant,
            strength=result.strength,
            distance=result.distance,
        )
    )


def _rounded(result: AxisResult) -> AxisResult:
    return replace(result, memberships=np.round(result.memberships, DECIMALS))


def _customers(features: pl.DataFrame) -> pl.DataFrame:
    return features.select(CUSTOMER_COLUMNS)


def snapshot_chains(
    first: list[D],
    rest: list[D],
    weight: Callable[[D], float],
    chains: int = 2,
    min_days: int = 4,
) -> list[list[D]]:
    """Splits the dates of a backfill into runs of ``SnapshotSeries``, one run per thread.

    ``first`` and ``rest`` are rising, and every date of ``rest`` is before every date of
    ``first``. ``first`` starts the first run (the dates written to PostgreSQL: the server
    parses them while the rest are computed). ``rest`` is cut where the weights (the work of a
    date, about its number of customers) of the two runs balance: its later part ends the first
    run and its earlier part is the second. A run starts with a full computation, and the first
    one makes another where it steps back from ``first`` to ``rest``, so with fewer than
    ``min_days`` dates for each run the dates stay in one run.

    Drift reports split their weeks with it too (``first`` empty, every week the same work).

    Returns:
        One or two lists of dates, each to be taken in its order by one series.
    """
    if chains < 2 or not rest or len(first) + len(rest) < 2 * min_days:
        return [first + rest]
    weights = np.array([weight(day) for day in rest], dtype=np.float64)
    half = (weights.sum() + sum(weight(day) for day in first)) / 2
    # The earliest dates whose work reaches half of the whole, at least min_days of them.
    cut = int(np.searchsorted(np.cumsum(weights), half)) + 1
    cut = min(max(cut, min_days), len(rest))
    earlier, later = rest[:cut], rest[cut:]
    if len(earlier) < min_days or len(first) + len(later) < min_days:
        return [first + rest]
    return [first + later, earlier]
