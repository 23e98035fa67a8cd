"""Canonical schemas shared by ingestion, features, the generator and the lake.

Every input layout is mapped onto ``ORDER_LINE_SCHEMA`` (one row per order line) or
``TICKET_SCHEMA`` (one row per support ticket). A column that a layout does not carry is
null, never zero, so that downstream code can tell "absent" from "none happened": an axis
whose inputs are all null is reported not applicable instead of being clustered.

Sign conventions: ``quantity``, ``sales``, ``discount`` and ``refund`` are all >= 0. A return
line (a UCI cancellation, say) carries ``quantity = 0``, ``sales = 0`` and its value in
``refund``.
"""

import polars as pl

ORDER_LINE_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String(),
    "customer_id": pl.String(),
    # Local wall-clock time of the order as exported (offsets dropped, no conversion).
    "ordered_at": pl.Datetime("us"),
    # False when the source gave a date only: time-of-day signals are then not applicable.
    "has_time_of_day": pl.Boolean(),
    # Product identity: ProductId when present, else SKU / StockCode.
    "product_id": pl.String(),
    "sku": pl.String(),
    "product_title": pl.String(),
    "product_type": pl.String(),
    "category": pl.String(),
    "quantity": pl.Float64(),
    # Line sales amount in the shop's currency (gross of discount).
    "sales": pl.Float64(),
    "discount": pl.Float64(),
    "refund": pl.Float64(),
    # Sales channel: web, pos, draft_order, mobile_app, ... (lower snake_case).
    "channel": pl.String(),
    # 1-based physical line in the source file where the record starts.
    "source_line": pl.Int64(),
    # The drop (dynamic partition key) the line came from.
    "drop_id": pl.String(),
}

TICKET_SCHEMA: dict[str, pl.DataType] = {
    "ticket_id": pl.String(),
    "customer_id": pl.String(),
    "created_at": pl.Datetime("us"),
    # email, chat, phone, social, ... (lower snake_case).
    "channel": pl.String(),
    "topic": pl.String(),
    "message_count": pl.Float64(),
    "resolution_hours": pl.Float64(),
    # Customer satisfaction, 1..5; null when not rated.
    "satisfaction": pl.Float64(),
    "source_line": pl.Int64(),
    "drop_id": pl.String(),
}

# Rows that fail validation are kept, never dropped: the original fields as a JSON object
# (or JSON array when the row could not be split into the header's columns), the line, why.
REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "source_line": pl.Int64(),
    "reason": pl.String(),
    "detail": pl.String(),
    "record": pl.String(),
    "drop_id": pl.String(),
}

# The column names of the Shopify-style export the reference system consumed (layout 1).
SHOPIFY_COLUMNS: tuple[str, ...] = (
    "OrderID",
    "Customer_ID",
    "Date",
    "Sku",
    "ProductId",
    "Title",
    "ProductType",
    "Category",
    "QTY",
    "Sales",
    "TotalDiscount",
    "Refunds",
    "Source",
)

# The column names of the support-ticket export (drop kind "tickets").
TICKET_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "customer_id",
    "created_at",
    "channel",
    "topic",
    "message_count",
    "resolution_hours",
    "satisfaction",
)


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with exactly ``schema``."""
    return pl.DataFrame(schema=schema)
