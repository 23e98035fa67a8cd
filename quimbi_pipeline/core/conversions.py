"""Per-layout conversion of a raw all-string batch into canonical columns plus row checks."""

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from quimbi_pipeline.core.layouts import ColumnMap
from quimbi_pipeline.core.parsing import (
    blank_to_null,
    missing_id,
    parse_datetime,
    parse_float,
    snake_case,
)

# Rejection reasons, most fundamental first: a row failing several checks is filed under the
# earliest. The reader's own reasons (ragged rows) never coexist with these.
REASONS: tuple[str, ...] = (
    "no_customer",
    "missing_order_id",
    "missing_ticket_id",
    "malformed_date",
    "missing_amount",
    "non_numeric_amount",
    "non_finite_amount",
    "absurd_amount",
    "negative_quantity",
    "negative_amount",
    "out_of_range",
    "duplicate_row",
)
ABSURD_AMOUNT = 1e7
ABSURD_QUANTITY = 1e6
# Bad values are quoted in details; keep them short enough to read.
_SHOWN_CHARS = 120


@dataclass(frozen=True)
class Check:
    """One validation rule: the Boolean column marking failures and how to explain one."""

    reason: str
    failed: str
    detail: pl.Expr


@dataclass(frozen=True)
class Conversion:
    """A converted batch: raw ``c0..`` columns, canonical columns, failure masks, checks."""

    frame: pl.DataFrame
    checks: tuple[Check, ...]


Converter = Callable[[pl.DataFrame], Conversion]


def _where(mask: pl.Series, then: pl.Series | float, otherwise: pl.Series | float) -> pl.Series:
    return pl.select(pl.when(mask).then(then).otherwise(otherwise)).to_series()


class _Batch:
    """A raw batch seen through a column map, collecting parsed columns and checks."""

    def __init__(self, raw: pl.DataFrame, columns: ColumnMap) -> None:
        self.raw, self.columns = raw, columns
        self.masks: dict[str, pl.Series] = {}
        self.checks: list[Check] = []

    def text(self, role: str) -> pl.Series:
        """The raw strings of a role, or nulls when the file lacks that column."""
        if role not in self.columns.index:
            return pl.repeat(None, self.raw.height, dtype=pl.String, eager=True)
        return self.raw.get_column(f"c{self.columns.index[role]}")

    def fail(self, reason: str, mask: pl.Series, role: str, message: str) -> None:
        """Register a check; the detail names the column and quotes the raw value."""
        name = f"_fails_{len(self.checks)}"
        self.masks[name] = mask.fill_null(False).rename(name)
        raw = pl.col(f"c{self.columns.index[role]}").str.slice(0, _SHOWN_CHARS)
        detail = pl.format("{}: '{}' {}", pl.lit(self.columns.label(role)), raw, pl.lit(message))
        self.checks.append(Check(reason, name, detail))

    def identifier(self, role: str, reason: str) -> pl.Series:
        """A stripped id column; a blank or 'nan'-like id fails with ``reason``."""
        raw = self.text(role)
        self.fail(reason, missing_id(raw), role, "is missing")
        return raw.str.strip_chars()

    def timestamp(self, role: str) -> tuple[pl.Series, pl.Series]:
        """Parsed wall-clock timestamps and their has-time-of-day flags."""
        parsed = parse_datetime(self.text(role))
        self.fail("malformed_date", parsed.blank | parsed.invalid, role, "is not a date")
        return parsed.values, parsed.has_time

    def number(self, role: str, limit: float, negative: str | None, required: bool) -> pl.Series:
        """A Float64 column with the missing/non-numeric/non-finite/absurd/negative checks."""
        parsed = parse_float(self.text(role))
        values = parsed.values
        if role not in self.columns.index:
            return values
        if required:
            self.fail("missing_amount", parsed.blank, role, "is empty")
        self.fail("non_numeric_amount", parsed.invalid, role, "is not a number")
        non_finite = values.is_nan() | values.is_infinite()
        self.fail("non_finite_amount", non_finite, role, "is not finite")
        self.fail("absurd_amount", values.abs() > limit, role, f"exceeds {limit:,.0f} in size")
        if negative is not None:
            self.fail(negative, values < 0, role, "is negative")
        return values

    def finish(self, **columns: pl.Series | None) -> Conversion:
        """Attach the canonical columns (None = absent, all null) and order checks by reason."""
        height = self.raw.height
        canonical = [
            pl.repeat(None, height, dtype=pl.String, eager=True).rename(name)
            if values is None
            else values.rename(name)
            for name, values in columns.items()
        ]
        frame = self.raw.with_columns(*canonical, *self.masks.values())
        checks = sorted(self.checks, key=lambda check: REASONS.index(check.reason))
        return Conversion(frame, tuple(checks))


def _shopify(batch: _Batch) -> Conversion:
    sku = blank_to_null(batch.text("sku"))
    ordered_at, has_time = batch.timestamp("date")
    quantity = batch.number("qty", ABSURD_QUANTITY, "negative_quantity", required=True)
    sales = batch.number("sales", ABSURD_AMOUNT, "negative_amount", required=True)
    # Exports disagree on the sign of discounts and refunds; the schema keeps both >= 0.
    discount = batch.number("discount", ABSURD_AMOUNT, None, required=False).abs()
    refund = batch.number("refunds", ABSURD_AMOUNT, None, required=False).abs()
    return batch.finish(
        order_id=batch.identifier("order_id", "missing_order_id"),
        customer_id=batch.identifier("customer_id", "no_customer"),
        ordered_at=ordered_at,
        has_time_of_day=has_time,
        product_id=blank_to_null(batch.text("product_id")).fill_null(sku),
        sku=sku,
        product_title=blank_to_null(batch.text("title")),
        product_type=blank_to_null(batch.text("product_type")),
        category=blank_to_null(batch.text("category")),
        quantity=quantity,
        sales=sales,
        discount=discount,
        refund=refund,
        channel=snake_case(batch.text("source")),
    )


def _uci(batch: _Batch) -> Conversion:
    order_id = batch.identifier("invoice", "missing_order_id")
    # Invoices numbered C... cancel earlier lines: the schema records them as refunds.
    cancelled = order_id.str.starts_with("C").fill_null(False)
    # Spreadsheet round trips turn the integer CustomerID into a float ("17850.0").
    customer_id = batch.identifier("customer_id", "no_customer").str.replace(r"^(\d+)\.0+$", "$1")
    ordered_at, has_time = batch.timestamp("invoice_date")
    quantity = batch.number("quantity", ABSURD_QUANTITY, None, required=True)
    price = batch.number("unit_price", ABSURD_AMOUNT, "negative_amount", required=True)
    value = quantity * price
    too_big = value.abs() > ABSURD_AMOUNT
    batch.fail("absurd_amount", too_big, "quantity", "x UnitPrice exceeds 10,000,000")
    batch.fail("negative_quantity", (quantity < 0) & ~cancelled, "quantity", "is negative")
    stock_code = blank_to_null(batch.text("stock_code"))
    return batch.finish(
        order_id=order_id,
        customer_id=customer_id,
        ordered_at=ordered_at,
        has_time_of_day=has_time,
        product_id=stock_code,
        sku=stock_code,
        product_title=blank_to_null(batch.text("description")),
        product_type=None,
        category=None,
        quantity=_where(cancelled, 0.0, quantity),
        sales=_where(cancelled, 0.0, value),
        discount=None,
        refund=_where(cancelled, value.abs(), 0.0),
        channel=None,
    )


def _tickets(batch: _Batch) -> Conversion:
    created_at, _ = batch.timestamp("created_at")
    satisfaction = batch.number("satisfaction", ABSURD_AMOUNT, None, required=False)
    if "satisfaction" in batch.columns.index:
        outside = (satisfaction < 1) | (satisfaction > 5)
        batch.fail("out_of_range", outside, "satisfaction", "is outside 1..5")
    return batch.finish(
        ticket_id=batch.identifier("ticket_id", "missing_ticket_id"),
        customer_id=batch.identifier("customer_id", "no_customer"),
        created_at=created_at,
        channel=snake_case(batch.text("channel")),
        topic=blank_to_null(batch.text("topic")),
        message_count=batch.number(
            "message_count", ABSURD_QUANTITY, "negative_amount", required=False
        ),
        resolution_hours=batch.number(
            "resolution_hours", ABSURD_AMOUNT, "negative_amount", required=False
        ),
        satisfaction=satisfaction,
    )


class _CdnowConverter:
    """CDNOW lines have no order id: it is built as customer-date, numbered within a day."""

    def __init__(self, columns: ColumnMap) -> None:
        self.columns = columns
        # Lines seen so far per customer-day, carried across batches so ids stay distinct.
        self.lines_per_day: dict[str, int] = {}

    def __call__(self, raw: pl.DataFrame) -> Conversion:
        batch = _Batch(raw, self.columns)
        customer_id = batch.identifier("customer_id", "no_customer")
        ordered_at, has_time = batch.timestamp("date")
        day_keys = (customer_id + "-" + batch.text("date").str.strip_chars()).to_list()
        order_ids = []
        for key in day_keys:
            seen = self.lines_per_day.get(key, 0) + 1
            self.lines_per_day[key] = seen
            order_ids.append(key if seen == 1 else f"{key}-{seen}")
        return batch.finish(
            order_id=pl.Series(order_ids, dtype=pl.String),
            customer_id=customer_id,
            ordered_at=ordered_at,
            has_time_of_day=has_time,
            product_id=None,
            sku=None,
            product_title=None,
            product_type=None,
            category=None,
            quantity=batch.number("number_of_cds", ABSURD_QUANTITY, "negative_quantity", True),
            sales=batch.number("dollar_value", ABSURD_AMOUNT, "negative_amount", True),
            discount=None,
            refund=None,
            channel=None,
        )


def make_converter(columns: ColumnMap) -> Converter:
    """The converter for a file; a CDNOW one carries per-day line counts across batches."""
    if columns.layout == "cdnow":
        return _CdnowConverter(columns)
    convert = {"shopify": _shopify, "uci": _uci, "tickets": _tickets}[columns.layout]
    return lambda raw: convert(_Batch(raw, columns))
