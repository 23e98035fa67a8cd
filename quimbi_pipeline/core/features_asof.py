"""``compute_customer_features`` at many rising as-of dates, recomputing only what changed.

A weekly snapshot history needs every customer's features as of every week's end. From one
week to the next most customers' raw aggregates (the ``o_``, ``l_``, ``p_``, ``k_`` and ``t_``
columns that ``core.features`` builds before its formulas) do not move, and the formulas,
which read ``as_of``, are evaluated for everyone at every date. A customer's raw aggregates
change only when

- one of their order lines is dated in (previous as_of, as_of]: all of them are recomputed;
- one of their tickets is: the ticket aggregates are;
- an order crosses a recency window: ``o_last90`` and ``o_prev90`` are the only aggregates of
  ``order_aggregates`` that read ``as_of``; integer counts, recounted for everyone at every
  date with the same expression;
- a full-price priced line lies between the previous and the current ``premium_unit_price``
  (the only shop-wide input of ``line_aggregates``): the line aggregates are recomputed;
- the order of their categories changes (below): the category aggregates are.

``FeatureTimeline`` prepares the lines and tickets once, keeps every customer's aggregates and
at each date recomputes what changed, with the functions ``compute_customer_features`` uses,
on the same per-customer rows in the same order. The frame it returns equals
``compute_customer_features(...).frame`` bit for bit (the tests compare them week by week); a
date before the previous one recomputes everyone. A new aggregate that reads ``as_of`` must be
added to the list above: the week-by-week tests fail until it is.

Three details keep it exact. (1) Category codes order each customer's (customer, category)
pairs, whose float sum in the category entropy depends on that order in the last bit, and
``prepare_lines`` draws them in order of first appearance in the cut (polars' categorical
codes, with no other categorical alive in the process); here a code is the position of its
first line in the cut, which orders them the same way, and when a category's first line moves
earlier (a customer sorted before bought it), its holders whose categories change order are
recomputed. Product codes need none of this: ``product_aggregates`` ranks pairs by quantity.
(2) When an order's lines carry one time each (the usual export), the order table of all the
lines is built once and cut by date. (3) The formulas run over a frame laid out as
``_feature_frame``'s (customer order, one chunk, plain columns): polars evaluates some float
kernels differently by position and layout, and the last bit follows.
"""

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import polars.selectors as cs

from quimbi_pipeline.core.axes import METRIC_COLUMNS, axis_columns
from quimbi_pipeline.core.features import _conform, compute_customer_features, prepare_lines
from quimbi_pipeline.core.features_common import (
    CUSTOMER,
    CUSTOMER_CODE,
    ORDER_CODE,
    RECENT_DAYS,
    US_PER_DAY,
)
from quimbi_pipeline.core.features_orders import (
    order_aggregates,
    order_feature_exprs,
    order_table,
    typical_gap_days,
)
from quimbi_pipeline.core.features_products import (
    category_aggregates,
    line_aggregates,
    premium_unit_price,
    product_aggregates,
    product_feature_exprs,
)
from quimbi_pipeline.core.features_support import (
    prepare_tickets,
    support_feature_exprs,
    ticket_aggregates,
)
from quimbi_pipeline.core.schema import ORDER_LINE_SCHEMA, TICKET_SCHEMA

Frame = pl.LazyFrame | pl.DataFrame

RECENCY_COLUMNS = ("o_last90", "o_prev90")
# Codes whose order reaches a float sum (see the module docstring): drawn per cut.
_CODED = ("category",)
_NONE = np.iinfo(np.int64).max  # no line of the code in the cut yet


@dataclass
class _State:
    as_of: datetime
    # Every customer's raw aggregates, filled as _feature_frame fills them.
    wide: pl.DataFrame
    premium_unit: float
    # Position of each global product / category code's first line in the cut (or _NONE).
    first_line: dict[str, np.ndarray]


@dataclass(frozen=True)
class _Cut:
    as_of: datetime
    in_cut: np.ndarray  # mask over the prepared lines
    first_line: dict[str, np.ndarray]
    premium_unit: float


class FeatureTimeline:
    """Customer features of one order history at a sequence of as-of dates.

    Args:
        orders: Order lines in ``ORDER_LINE_SCHEMA`` (the whole history).
        tickets: Support tickets in ``TICKET_SCHEMA`` or None; as in
            ``compute_customer_features``, whether the shop has tickets is decided on the
            whole frame.
    """

    def __init__(self, orders: Frame, tickets: Frame | None = None) -> None:
        self._orders, self._tickets_in = orders, tickets
        self._state: _State | None = None
        lines_in = _conform(orders, ORDER_LINE_SCHEMA, ("order_id", "customer_id", "ordered_at"))
        latest = (
            lines_in.filter(pl.col(CUSTOMER).is_not_null())
            .select(pl.col("ordered_at").max())
            .collect()
            .item()
        )
        tickets_in = _conform(
            tickets if tickets is not None else pl.DataFrame(schema=TICKET_SCHEMA),
            TICKET_SCHEMA,
            ("customer_id", "created_at"),
        )
        self._has_tickets = bool(
            tickets_in.select(pl.col(CUSTOMER).is_not_null().any()).collect().item()
        )
        # Every line in prepare_lines' canonical order; a cut is a mask over them.
        self._lines = prepare_lines(lines_in, latest)[0] if latest is not None else None
        if self._lines is None:
            return
        self._line_ts = self._lines.get_column("ordered_at").to_numpy()
        self._line_customer = self._lines.get_column(CUSTOMER_CODE).to_numpy().astype(np.int64)
        self._customers = int(self._line_customer.max()) + 1
        self._unit = self._lines.get_column("unit")
        self._codes = {
            c: self._lines.get_column(c).fill_null(-1).cast(pl.Int64).to_numpy() for c in _CODED
        }
        # An order's lines are sorted by time, so its first line carries the order's time.
        order_codes = self._lines.get_column(ORDER_CODE).to_numpy()
        first = np.flatnonzero(np.diff(order_codes, prepend=-1) != 0)
        self._order_ts = self._line_ts[first]
        self._order_customer = self._line_customer[first]
        # When every order's lines share one time, no cut splits an order, and the order table
        # of all the lines holds each order's row of any cut: built once.
        last = np.append(first[1:], order_codes.size) - 1
        self._order_table = None
        if (self._line_ts[last] == self._order_ts).all():
            self._order_table = order_table(self._lines)
            self._order_table_customer = (
                self._order_table.get_column(CUSTOMER_CODE).to_numpy().astype(np.int64)
            )
            self._order_table_ts = self._order_table.get_column("ts").to_numpy()
        last_ticket = tickets_in.select(pl.col("created_at").max()).collect().item()
        self._tickets = prepare_tickets(tickets_in, last_ticket or latest)
        codes = self._lines.select(CUSTOMER, CUSTOMER_CODE).unique(CUSTOMER_CODE)
        self._ticket_customer = (
            self._tickets.select(CUSTOMER)
            .join(codes, on=CUSTOMER, how="left", maintain_order="left")
            .get_column(CUSTOMER_CODE)
            .fill_null(-1)
            .cast(pl.Int64)
            .to_numpy()
        )
        self._ticket_ts = self._tickets.get_column("created_at").to_numpy()

    def fork(self) -> "FeatureTimeline":
        """A timeline of the same history with no date taken yet, for another thread.

        The prepared lines, orders and tickets are shared (nothing writes them after
        ``__init__``); only the state carried from one date to the next is its own.
        """
        twin = copy.copy(self)
        twin._state = None
        return twin

    def frame_at(self, as_of: datetime) -> pl.DataFrame:
        """``compute_customer_features(orders, tickets, as_of=as_of).frame``, fast."""
        as_of = as_of.replace(tzinfo=None)
        in_cut = self._line_ts <= np.datetime64(as_of) if self._lines is not None else None
        if in_cut is None or not in_cut.any():
            self._state = None
            return compute_customer_features(self._orders, self._tickets_in, as_of=as_of).frame
        premium_unit = premium_unit_price(self._unit.filter(pl.Series(in_cut)))
        state = self._state
        if state is None or as_of < state.as_of:
            cut = _Cut(as_of, in_cut, self._first_lines(in_cut), premium_unit)
            wide = self._aggregates(np.unique(self._line_customer[in_cut]), cut)
        else:
            new = in_cut & (self._line_ts > np.datetime64(state.as_of))
            cut = _Cut(as_of, in_cut, self._first_lines(new, state.first_line), premium_unit)
            wide = self._updated(state, cut, new)
        self._state = _State(as_of, wide, premium_unit, cut.first_line)
        return _features(wide, as_of, use_tickets=self._has_tickets)

    def _updated(self, state: _State, cut: _Cut, new: np.ndarray) -> pl.DataFrame:
        """``state.wide`` brought to ``cut``: each touched customer's changed parts recomputed."""
        wide = self._recounted(state.wide, cut.as_of)
        renewed = np.unique(self._line_customer[new])
        if renewed.size:
            renew = self._chosen(renewed)[wide.get_column(CUSTOMER_CODE).to_numpy()]
            kept = wide.filter(~pl.Series(renew))
            fresh = self._aggregates(renewed, cut)
            wide = pl.concat([kept, fresh.select(kept.columns)])
        tickets = (self._ticket_ts > np.datetime64(state.as_of)) & (
            self._ticket_ts <= np.datetime64(cut.as_of)
        )
        others = {
            "tickets": self._ticket_customer[tickets & (self._ticket_customer >= 0)],
            "lines": self._premium_band(state.premium_unit, cut),
            "category": self._reordered(
                "category", state.first_line["category"], cut.first_line["category"], cut.in_cut
            ),
        }
        for part, customers in others.items():
            customers = np.setdiff1d(customers, renewed)
            if customers.size:
                patch = self._part(part, customers, cut)
                key = CUSTOMER if part == "tickets" else CUSTOMER_CODE
                wide = wide.update(patch, on=key)
        return wide

    def _first_lines(
        self, lines: np.ndarray, previous: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Per global code, the position of its first line among ``lines`` and ``previous``."""
        positions = np.flatnonzero(lines)
        out = {}
        for column, codes in self._codes.items():
            if previous is None:
                first = np.full(int(codes.max()) + 1, _NONE, dtype=np.int64)
            else:
                first = previous[column].copy()
            taken = codes[positions]
            known = taken >= 0
            # Lines are in canonical order: the least position is the first appearance.
            np.minimum.at(first, taken[known], positions[known])
            out[column] = first
        return out

    def _premium_band(self, previous: float, cut: _Cut) -> np.ndarray:
        """Customers with a full-price line that changed side of the premium unit price."""
        if cut.premium_unit == previous:
            return np.empty(0, dtype=np.int64)
        low, high = sorted((previous, cut.premium_unit))
        unit = self._unit.fill_null(np.nan).to_numpy()
        discount = self._lines.get_column("discount").to_numpy()
        band = cut.in_cut & (discount <= 0) & (unit > low) & (unit <= high)
        return self._line_customer[band]

    def _reordered(
        self, column: str, old: np.ndarray, new: np.ndarray, in_cut: np.ndarray
    ) -> np.ndarray:
        """Customers whose codes of ``column`` no longer sort in the same order."""
        codes = self._codes[column]
        moved = (old != _NONE) & (new < old)
        if not moved.any():
            return np.empty(0, dtype=np.int64)
        coded = in_cut & (codes >= 0)
        holds = coded.copy()
        holds[coded] = moved[codes[coded]]
        rows = coded & self._chosen(self._line_customer[holds])[self._line_customer]
        held = codes[rows]
        pairs = (
            pl.DataFrame({"c": self._line_customer[rows], "old": old[held], "new": new[held]})
            .unique()
            .sort("c", "old")
        )
        same = pl.col("c") == pl.col("c").shift(1)
        swapped = same & (pl.col("new") < pl.col("new").shift(1))
        return pairs.filter(swapped).get_column("c").to_numpy()

    def _recounted(self, wide: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
        """``wide`` with the recency counts of ``order_aggregates`` as of ``as_of``."""
        horizon = np.datetime64(as_of - timedelta(days=2 * RECENT_DAYS + 1))
        recent = (self._order_ts > horizon) & (self._order_ts <= np.datetime64(as_of))
        days_before = (pl.lit(as_of) - pl.col("ts")).dt.total_microseconds() / US_PER_DAY
        counts = (
            pl.DataFrame(
                {
                    CUSTOMER_CODE: self._order_customer[recent],
                    "ts": self._order_ts[recent],
                }
            )
            .with_columns(pl.col(CUSTOMER_CODE).cast(wide.schema[CUSTOMER_CODE]))
            .group_by(CUSTOMER_CODE)
            .agg(
                o_last90=(days_before < RECENT_DAYS).sum(),
                o_prev90=((days_before >= RECENT_DAYS) & (days_before < 2 * RECENT_DAYS)).sum(),
            )
        )
        return (
            wide.drop(RECENCY_COLUMNS)
            .join(counts, on=CUSTOMER_CODE, how="left")
            .with_columns(pl.col(RECENCY_COLUMNS).cast(pl.Float64).fill_null(0.0))
            .select(wide.columns)
        )

    def _chosen(self, customers: np.ndarray) -> np.ndarray:
        """A mask over customer codes, true for ``customers``."""
        chosen = np.zeros(self._customers, dtype=bool)
        chosen[customers] = True
        return chosen

    def _cut_lines(self, customers: np.ndarray, cut: _Cut) -> pl.DataFrame:
        """The prepared lines of ``customers`` in the cut, coded as prepare_lines codes them."""
        chosen = self._chosen(customers)
        return self._lines.filter(pl.Series(cut.in_cut & chosen[self._line_customer])).with_columns(
            pl.col(c).replace_strict(
                np.arange(cut.first_line[c].size), cut.first_line[c], return_dtype=pl.Int64
            )
            for c in _CODED
        )

    def _cut_tickets(self, customers: np.ndarray, cut: _Cut) -> pl.DataFrame:
        """The prepared tickets of ``customers`` in the cut."""
        chosen = self._chosen(customers)
        known = self._ticket_customer >= 0
        rows = (self._ticket_ts <= np.datetime64(cut.as_of)) & known
        rows[known] &= chosen[self._ticket_customer[known]]
        return self._tickets.filter(pl.Series(rows))

    def _aggregates(self, customers: np.ndarray, cut: _Cut) -> pl.DataFrame:
        """Raw aggregates of ``customers`` in the cut, assembled as _feature_frame does."""
        lines = self._cut_lines(customers, cut)
        if self._order_table is None:
            orders = order_table(lines)
        else:
            rows = self._chosen(customers)[self._order_table_customer] & (
                self._order_table_ts <= np.datetime64(cut.as_of)
            )
            orders = self._order_table.filter(pl.Series(rows))
        wide = order_aggregates(orders, cut.as_of)
        for part in ("lines", "product", "category"):
            wide = wide.join(_PARTS[part](lines, cut.premium_unit), on=CUSTOMER_CODE, how="left")
        tickets = ticket_aggregates(self._cut_tickets(customers, cut))
        wide = wide.join(tickets, on=CUSTOMER, how="left")
        return wide.with_columns(cs.numeric().exclude(CUSTOMER_CODE).fill_null(0.0))

    def _part(self, part: str, customers: np.ndarray, cut: _Cut) -> pl.DataFrame:
        """One part of the raw aggregates of ``customers`` (who all have lines in the cut)."""
        if part == "tickets":
            return ticket_aggregates(self._cut_tickets(customers, cut))
        return _PARTS[part](self._cut_lines(customers, cut), cut.premium_unit)


# The line-level parts of _feature_frame, keyed by customer code.
_PARTS = {
    "lines": line_aggregates,
    "product": lambda lines, _premium: product_aggregates(lines),
    "category": lambda lines, _premium: category_aggregates(lines),
}


def _features(wide: pl.DataFrame, as_of: datetime, *, use_tickets: bool) -> pl.DataFrame:
    """The metric and axis columns from the raw aggregates, as _feature_frame computes them."""
    columns = [*METRIC_COLUMNS, *axis_columns()]
    exprs = {
        **order_feature_exprs(as_of, typical_gap_days(wide)),
        **product_feature_exprs(),
        **support_feature_exprs(as_of, use_tickets=use_tickets),
    }
    # Laid out as _feature_frame has them: in customer order, in one chunk, every column a
    # plain series (concatenating one-row frames can leave a column stored as one repeated
    # value). Polars evaluates some float kernels differently for such layouts, and the last
    # bit of a formula follows.
    ordered = pl.DataFrame(wide.sort(CUSTOMER_CODE).rechunk().get_columns())
    return ordered.select(CUSTOMER, *[exprs[c].cast(pl.Float64).alias(c) for c in columns]).sort(
        CUSTOMER
    )
