"""Per-customer behavioral features on the 14 axes, from order lines and support tickets.

``compute_customer_features`` gives one row per customer with at least one order line on or
before ``as_of``: the metric columns, then every axis column of ``core.axes.AXES`` (formulas
there), all finite Float64. It also says, per axis, whether the axis can be clustered at all:
an axis whose input columns are absent (all null, as in the CDNOW log) or whose features are
all constant across customers is not applicable, with a readable reason.

Everything is relative to ``as_of``, which defaults to the data's latest ``ordered_at`` (never
the wall clock), so the same input always gives the same output; an earlier ``as_of`` cuts the
lines and tickets first, as a weekly snapshot back in history needs. Refunds sit on the order
line, so a snapshot cannot tell a refund made after ``as_of`` from an earlier one.
"""

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
import polars.selectors as cs

from quimbi_pipeline.core.axes import AXES, METRIC_COLUMNS, axis, axis_columns
from quimbi_pipeline.core.features_common import CUSTOMER, CUSTOMER_CODE, ORDER_CODE, run_start
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
    SUPPORT_AXES,
    prepare_tickets,
    support_feature_exprs,
    ticket_aggregates,
)
from quimbi_pipeline.core.schema import ORDER_LINE_SCHEMA, TICKET_SCHEMA

Frame = pl.LazyFrame | pl.DataFrame


@dataclass(frozen=True)
class AxisApplicability:
    axis: str
    applicable: bool
    # Why the axis is not applicable; None when it is.
    reason: str | None
    # "orders", "tickets", or "orders_proxy" (a support axis computed from orders because the
    # shop has no tickets). communication_preference is always "orders": it reads the sales
    # channels of the orders even when the shop has tickets (evidence in core.axes).
    source: str


@dataclass
class CustomerFeatures:
    frame: pl.DataFrame
    as_of: datetime
    applicability: dict[str, AxisApplicability]
    # Per axis, the features with one value for every customer (harmless once scaled, but
    # worth showing); an axis whose features are all constant is not applicable.
    constant_features: dict[str, tuple[str, ...]] = field(default_factory=dict)


# Order inputs an axis needs, any one of them present (non-null somewhere) being enough.
_ORDER_INPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "purchase_value": (("sales",), "no sales amounts in the orders (all null)"),
    "category_exploration": (("category",), "no category column in the orders (all null)"),
    "price_sensitivity": (("discount",), "no discount column in the orders (all null)"),
    "repurchase_behavior": (("product",), "no product id, SKU or title in the orders (all null)"),
    "return_behavior": (("refund",), "no refund column in the orders (all null)"),
    "product_knowledge": (("product",), "no product id, SKU or title in the orders (all null)"),
    "communication_preference": (
        ("channel",),
        "no sales channel in the orders (all null); ticket channels are not used for this axis",
    ),
    "value_sophistication": (("sales",), "no sales amounts in the orders (all null)"),
}
_PROXY_INPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "problem_complexity_profile": (
        ("refund", "discount"),
        "no support tickets, and no refund or discount column in the orders (all null)",
    ),
}
_TICKET_INPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "problem_complexity_profile": (
        ("topic", "message_count", "resolution_hours"),
        "the support tickets carry no topic, message count or resolution time (all null)",
    ),
    "support_history": (("ticket",), "no support tickets on or before as_of"),
}


def compute_customer_features(
    orders: Frame, tickets: Frame | None = None, *, as_of: datetime | None = None
) -> CustomerFeatures:
    """Metrics and axis features per customer, as of ``as_of``.

    Args:
        orders: Order lines in ``ORDER_LINE_SCHEMA`` (missing optional columns count as null).
        tickets: Support tickets in ``TICKET_SCHEMA``, or None. Whether the shop "has tickets"
            is decided on the whole frame, not the ``as_of`` cut, so the support axes keep one
            meaning across a history of snapshots.
        as_of: Reference time (naive, the orders' local wall clock; a timezone is dropped).
            Defaults to the latest ``ordered_at``.
    """
    lines_in = _conform(orders, ORDER_LINE_SCHEMA, ("order_id", "customer_id", "ordered_at"))
    as_of = _resolve_as_of(lines_in, as_of)
    lines, present = prepare_lines(lines_in, as_of)
    tickets_in = _conform(
        tickets if tickets is not None else pl.DataFrame(schema=TICKET_SCHEMA),
        TICKET_SCHEMA,
        ("customer_id", "created_at"),
    )
    has_tickets = bool(tickets_in.select(pl.col(CUSTOMER).is_not_null().any()).collect().item())
    ticket_lines = prepare_tickets(tickets_in, as_of)
    ticket_present = {
        c: ticket_lines.get_column(c).null_count() < ticket_lines.height
        for c in ("topic", "message_count", "resolution_hours")
    } | {"ticket": ticket_lines.height > 0}

    frame = _feature_frame(lines, ticket_lines, as_of, use_tickets=has_tickets)
    constant = _constant_features(frame)
    applicability = {
        a.name: _applicability(
            a.name, has_tickets, present, ticket_present, constant[a.name], frame.height
        )
        for a in AXES
    }
    return CustomerFeatures(frame, as_of, applicability, constant)


def prepare_lines(lines: pl.LazyFrame, as_of: datetime) -> tuple[pl.DataFrame, dict[str, bool]]:
    """The lines on or before ``as_of`` with the columns the features read, nulls resolved.

    The lines come back sorted by customer and order with integer run codes ``c`` (customer)
    and ``o`` (order), and ``product`` / ``category`` as integer codes, so later grouping
    hashes integers rather than strings. Also returns, per input (product, category, sales,
    discount, refund, channel, time_of_day), whether any line carries it: absent inputs make
    axes not applicable.
    """
    cut = (
        lines.filter(
            pl.col(CUSTOMER).is_not_null()
            & pl.col("ordered_at").is_not_null()
            & (pl.col("ordered_at") <= pl.lit(as_of))
        )
        .select(
            CUSTOMER,
            "order_id",
            "ordered_at",
            pl.col("has_time_of_day").fill_null(False).alias("timed"),
            # The reference never mapped the product id; SKU and title stand in when it is absent.
            pl.coalesce("product_id", "sku", "product_title").alias("product"),
            "category",
            "quantity",
            "sales",
            "discount",
            "refund",
            "channel",
        )
        .collect()
    )
    present = {
        c: cut.get_column(c).null_count() < cut.height
        for c in ("product", "category", "sales", "discount", "refund", "channel")
    } | {"time_of_day": bool(cut.get_column("timed").any())}
    if cut.get_column("order_id").null_count():
        # Lines without an order id: one order per customer and timestamp.
        fallback = pl.lit("@") + pl.col("ordered_at").dt.to_string()
        cut = cut.with_columns(pl.coalesce("order_id", fallback).alias("order_id"))
    qty = pl.col("quantity").fill_null(1.0).clip(lower_bound=0.0)
    money = [
        pl.col(c).fill_null(0.0).clip(lower_bound=0.0) for c in ("sales", "discount", "refund")
    ]
    prepared = (
        # Every column is a sort key so float sums run in one canonical order: the features are
        # a function of the set of lines, not of the order they arrived in.
        cut.sort(CUSTOMER, "order_id", pl.all().exclude(CUSTOMER, "order_id"), nulls_last=True)
        .with_columns(
            run_start(CUSTOMER).cum_sum().cast(pl.UInt32).set_sorted().alias(CUSTOMER_CODE),
            run_start(CUSTOMER, "order_id")
            .cum_sum()
            .cast(pl.UInt32)
            .set_sorted()
            .alias(ORDER_CODE),
            # Codes only group; their values never reach a feature.
            pl.col("product", "category").cast(pl.Categorical).to_physical(),
            qty.alias("qty"),
            *money,
        )
        .with_columns(
            unit=pl.when((pl.col("qty") > 0) & (pl.col("sales") > 0)).then(
                pl.col("sales") / pl.col("qty")
            )
        )
    )
    return prepared.drop("quantity", "order_id"), present


def _feature_frame(
    lines: pl.DataFrame, tickets: pl.DataFrame, as_of: datetime, *, use_tickets: bool
) -> pl.DataFrame:
    """customer_id, the metrics and every axis column, one row per customer, sorted."""
    columns = [*METRIC_COLUMNS, *axis_columns()]
    if lines.height == 0:
        return pl.DataFrame(schema={CUSTOMER: pl.String(), **dict.fromkeys(columns, pl.Float64())})
    orders = order_aggregates(order_table(lines), as_of)
    parts = [
        line_aggregates(lines, premium_unit_price(lines.get_column("unit"))),
        product_aggregates(lines),
        category_aggregates(lines),
    ]
    exprs = {
        **order_feature_exprs(as_of, typical_gap_days(orders)),
        **product_feature_exprs(),
        **support_feature_exprs(as_of, use_tickets=use_tickets),
    }
    if set(exprs) != set(columns):
        raise RuntimeError(f"feature formulas and AXES disagree: {set(exprs) ^ set(columns)}")
    wide = orders
    for part in parts:
        wide = wide.join(part, on=CUSTOMER_CODE, how="left")
    wide = wide.join(ticket_aggregates(tickets), on=CUSTOMER, how="left")
    return (
        # A customer without products, categories or tickets has zero of each.
        wide.with_columns(cs.numeric().exclude(CUSTOMER_CODE).fill_null(0.0))
        .select(CUSTOMER, *[exprs[c].cast(pl.Float64).alias(c) for c in columns])
        .sort(CUSTOMER)
    )


def _constant_features(frame: pl.DataFrame) -> dict[str, tuple[str, ...]]:
    columns = axis_columns()
    if frame.height == 0:
        spread = dict.fromkeys(columns, 0.0)
    else:
        spread = frame.select((pl.col(c).max() - pl.col(c).min()).alias(c) for c in columns).row(
            0, named=True
        )
    return {
        a.name: tuple(
            f.name for f, c in zip(a.features, a.columns(), strict=True) if spread[c] == 0
        )
        for a in AXES
    }


def _applicability(
    name: str,
    has_tickets: bool,
    present: dict[str, bool],
    ticket_present: dict[str, bool],
    constant: tuple[str, ...],
    customers: int,
) -> AxisApplicability:
    if name not in SUPPORT_AXES:
        source, needs, available = "orders", _ORDER_INPUTS.get(name), present
    elif has_tickets:
        source, needs, available = "tickets", _TICKET_INPUTS[name], ticket_present
    elif name == "support_history":
        # Nothing in an order says how a customer was served: no proxy.
        return AxisApplicability(name, False, "the shop has no support tickets", "tickets")
    else:
        source, needs, available = "orders_proxy", _PROXY_INPUTS[name], present
    if customers == 0:
        return AxisApplicability(name, False, "no order lines on or before as_of", source)
    if needs is not None and not any(available[i] for i in needs[0]):
        return AxisApplicability(name, False, needs[1], source)
    if len(constant) == len(axis(name).features):
        who = "the only customer" if customers == 1 else f"all {customers} customers"
        reason = f"every feature has the same value for {who}"
        return AxisApplicability(name, False, reason, source)
    return AxisApplicability(name, True, None, source)


def _conform(
    frame: Frame, schema: dict[str, pl.DataType], required: tuple[str, ...]
) -> pl.LazyFrame:
    """``frame`` with exactly ``schema``'s columns: missing optional ones are null."""
    lazy = frame.lazy()
    have = lazy.collect_schema()
    missing = [c for c in required if c not in have]
    if missing:
        raise ValueError(f"input lacks required columns {missing}")
    return lazy.select(
        pl.col(c).cast(dtype) if c in have else pl.lit(None, dtype=dtype).alias(c)
        for c, dtype in schema.items()
    )


def _resolve_as_of(lines: pl.LazyFrame, as_of: datetime | None) -> datetime:
    if as_of is not None:
        # ordered_at is naive local wall-clock time; an aware as_of is read on the same clock.
        return as_of.replace(tzinfo=None)
    latest = (
        lines.filter(pl.col(CUSTOMER).is_not_null()).select(pl.col("ordered_at").max()).collect()
    ).item()
    if latest is None:
        raise ValueError("no order lines with a customer and a timestamp: pass as_of explicitly")
    return latest
