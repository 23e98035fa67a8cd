"""The input layouts: recognising them from a header and mapping their columns to roles."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from quimbi_pipeline.core.source_file import IngestError, read_head

LAYOUTS: tuple[str, ...] = ("shopify", "uci", "cdnow", "tickets")

# The CDNOW log has no header of its own; these names key its rejected records (and match the
# header line that some redistributions, lifetimes' copy among them, prepend).
CDNOW_COLUMNS: tuple[str, ...] = ("customer_id", "date", "number_of_cds", "dollar_value")
_CDNOW_DATA_LINE = re.compile(r"\s*\d+\s+\d{8}\s+-?\d+(?:\.\d*)?\s+-?\d+(?:\.\d*)?\s*")


@dataclass(frozen=True)
class Role:
    """A column a layout reads: its usual spelling and the other spellings it answers to."""

    name: str
    column: str
    aliases: tuple[str, ...] = ()
    required: bool = False

    @property
    def spellings(self) -> tuple[str, ...]:
        """Normalised header names that mean this role, the usual spelling first."""
        return (normalise_header_name(self.column), *self.aliases)


# Roles per delimited layout, matched on normalise_header_name(); the first spelling found wins.
CSV_ROLES: dict[str, tuple[Role, ...]] = {
    "shopify": (
        Role("order_id", "OrderID", required=True),
        Role("customer_id", "Customer_ID", required=True),
        Role("date", "Date", required=True),
        Role("sku", "Sku"),
        Role("product_id", "ProductId"),
        Role("title", "Title"),
        Role("product_type", "ProductType"),
        Role("category", "Category"),
        Role("qty", "QTY", ("quantity",), required=True),
        Role("sales", "Sales", required=True),
        Role("discount", "TotalDiscount", ("discount",)),
        Role("refunds", "Refunds", ("refund",)),
        Role("source", "Source"),
    ),
    "uci": (
        Role("invoice", "InvoiceNo", ("invoice",), required=True),
        Role("stock_code", "StockCode"),
        Role("description", "Description"),
        Role("quantity", "Quantity", required=True),
        Role("invoice_date", "InvoiceDate", required=True),
        Role("unit_price", "UnitPrice", ("price",), required=True),
        Role("customer_id", "CustomerID", required=True),
        Role("country", "Country"),
    ),
    "tickets": (
        Role("ticket_id", "ticket_id", required=True),
        Role("customer_id", "customer_id", required=True),
        Role("created_at", "created_at", ("created", "createddate"), required=True),
        Role("channel", "channel", ("via",)),
        Role("topic", "topic", ("tags", "tag")),
        Role("message_count", "message_count", ("messages", "nummessages")),
        Role("resolution_hours", "resolution_hours", ("hourstoresolution",)),
        Role("satisfaction", "satisfaction", ("csat", "satisfactionscore", "satisfactionrating")),
    ),
}
# Shared by every layout, so it says nothing about which layout a header belongs to.
_UNINFORMATIVE = {"customer_id"}


class LayoutError(ValueError):
    """A header that names no known layout, or lacks a column its layout needs."""


@dataclass(frozen=True)
class ColumnMap:
    """Where each role of a layout sits in a file: role -> column index and header label."""

    layout: str
    header: tuple[str, ...]
    index: dict[str, int]

    def label(self, role: str) -> str:
        """The header name of a role's column, as spelled in the file."""
        return self.header[self.index[role]]


def drop_kind(layout: str) -> Literal["orders", "tickets"]:
    """Which canonical table a layout fills."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    return "tickets" if layout == "tickets" else "orders"


def normalise_header_name(name: str) -> str:
    """Case-, space- and punctuation-insensitive form: 'Customer ID' -> 'customerid'."""
    return re.sub(r"[^0-9a-z]", "", name.replace("\ufeff", "").lower())


def _describe(header: Sequence[str]) -> str:
    shown = ", ".join(repr(h) for h in header[:30])
    return shown + (f", ... ({len(header)} columns)" if len(header) > 30 else "")


def is_cdnow_header(first_line: str) -> bool:
    """True when a whitespace-separated line is the CDNOW column names."""
    words = [normalise_header_name(w) for w in first_line.split()]
    return words == [normalise_header_name(c) for c in CDNOW_COLUMNS]


def detect_layout(first_record: Sequence[str], first_line: str) -> str:
    """Name the layout of a file from its first record (CSV-split) and first physical line."""
    if len(first_record) <= 1:
        if is_cdnow_header(first_line) or _CDNOW_DATA_LINE.fullmatch(first_line):
            return "cdnow"
        separators = [
            name for sep, name in ((";", "semicolon"), ("\t", "tab")) if sep in first_line
        ]
        hint = f" ({separators[0]}-separated files are not supported)" if separators else ""
        raise LayoutError(
            f"unknown layout: first line {first_line[:200]!r} is neither a CSV header of "
            f"{', '.join(CSV_ROLES)} nor a CDNOW log line{hint}"
        )
    names = {normalise_header_name(h) for h in first_record}
    scores = {
        layout: sum(
            1 for role in roles if role.name not in _UNINFORMATIVE and names & set(role.spellings)
        )
        for layout, roles in CSV_ROLES.items()
    }
    best = max(scores.values())
    winners = [layout for layout, score in scores.items() if score == best]
    if best < 2 or len(winners) > 1:
        raise LayoutError(
            f"unknown layout: header {_describe(first_record)} matches none of "
            f"{', '.join(LAYOUTS)} (best matches: {scores})"
        )
    return winners[0]


def map_columns(layout: str, header: Sequence[str]) -> ColumnMap:
    """Find each role of ``layout`` in ``header``; a missing required column is a LayoutError."""
    header = tuple(header)
    if layout == "cdnow":
        return ColumnMap(layout, CDNOW_COLUMNS, {c: i for i, c in enumerate(CDNOW_COLUMNS)})
    drop_kind(layout)
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        positions.setdefault(normalise_header_name(name), i)
    index: dict[str, int] = {}
    for role in CSV_ROLES[layout]:
        found = [positions[a] for a in role.spellings if a in positions]
        if found:
            index[role.name] = found[0]
        elif role.required:
            raise LayoutError(
                f"missing required column {role.column!r} for layout {layout!r}; "
                f"header found: {_describe(header)}"
            )
    return ColumnMap(layout, header, index)


def sniff_layout(path: Path) -> str:
    """The layout of a file, judged from its first line only (IngestError if unknown)."""
    path = Path(path)
    head = read_head(path)
    try:
        return detect_layout(head.first_record, head.first_line)
    except LayoutError as error:
        raise IngestError(path, 1, str(error)) from error
