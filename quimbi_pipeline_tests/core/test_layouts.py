"""Layout detection, header mapping and the per-layout conversion to the canonical schema."""

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from quimbi_pipeline.core.conversions import make_converter
from quimbi_pipeline.core.layouts import (
    LAYOUTS,
    LayoutError,
    detect_layout,
    drop_kind,
    map_columns,
    sniff_layout,
)
from quimbi_pipeline.core.parsing import parse_datetime, parse_float, snake_case
from quimbi_pipeline.core.schema import (
    ORDER_LINE_SCHEMA,
    SHOPIFY_COLUMNS,
    TICKET_COLUMNS,
    TICKET_SCHEMA,
)
from quimbi_pipeline.core.source_file import IngestError
from quimbi_pipeline.core.validation import SeenHashes, record_keys, split_batch

UCI_COLUMNS = [
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
    "CustomerID", "Country",
]  # fmt: skip


def convert(
    layout: str, header: list[str], rows: list[list[str]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run one batch of raw rows through the layout's converter and the validation split."""
    columns = map_columns(layout, header)
    width = len(columns.header)
    raw = pl.DataFrame(
        {f"c{i}": [row[i] for row in rows] for i in range(width)}
        | {"source_line": list(range(2, len(rows) + 2))},
        schema={**{f"c{i}": pl.String for i in range(width)}, "source_line": pl.Int64},
    )
    schema = TICKET_SCHEMA if drop_kind(layout) == "tickets" else ORDER_LINE_SCHEMA
    conversion = make_converter(columns)(raw)
    return split_batch(conversion, record_keys(list(columns.header)), schema, "d", SeenHashes())


@pytest.mark.parametrize(
    ("header", "layout"),
    [
        (list(SHOPIFY_COLUMNS), "shopify"),
        (["order id", " CUSTOMER_ID ", "date", "qty", "sales", "Extra"], "shopify"),
        (UCI_COLUMNS, "uci"),
        (["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Customer ID"], "uci"),
        (list(TICKET_COLUMNS), "tickets"),
        (["Ticket ID", "Customer ID", "Created At", "Channel", "tags"], "tickets"),
    ],
)
def test_detect_layout_from_csv_header(header: list[str], layout: str) -> None:
    assert detect_layout(header, ",".join(header)) == layout


@pytest.mark.parametrize(
    "line", [" 00001 19970101  1   11.77", "00002 19970112 5 77.00", " customer_id  date cds value"]
)
def test_detect_layout_cdnow_from_line_shape(line: str) -> None:
    if "cds" in line:
        with pytest.raises(LayoutError):
            detect_layout([line], line)
    else:
        assert detect_layout([line], line) == "cdnow"
    header = " customer_id  date number_of_cds  dollar_value"
    assert detect_layout([header], header) == "cdnow"


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (["foo", "bar", "baz"], "'foo'"),
        (["OrderID;Customer_ID;Date"], "semicolon"),
        (["customer_id", "date"], "matches none"),
    ],
)
def test_detect_layout_unknown_names_what_it_saw(header: list[str], needle: str) -> None:
    with pytest.raises(LayoutError, match="unknown layout") as raised:
        detect_layout(header, ",".join(header))
    assert needle in str(raised.value)


def test_map_columns_missing_required_names_column_and_header() -> None:
    header = [c for c in SHOPIFY_COLUMNS if c != "Sales"]
    with pytest.raises(LayoutError) as raised:
        map_columns("shopify", header)
    message = str(raised.value)
    assert "'Sales'" in message
    assert "'OrderID'" in message and "'Source'" in message


def test_map_columns_is_case_and_space_insensitive_and_skips_absent_optionals() -> None:
    columns = map_columns("shopify", ["Sales", "qty", "DATE", "customer id", "Order_ID", "X"])
    assert columns.index == {"sales": 0, "qty": 1, "date": 2, "customer_id": 3, "order_id": 4}
    assert columns.label("customer_id") == "customer id"


def test_drop_kind() -> None:
    assert [drop_kind(layout) for layout in LAYOUTS] == ["orders", "orders", "orders", "tickets"]
    with pytest.raises(ValueError, match="unknown layout"):
        drop_kind("excel")


def test_sniff_layout_reads_the_head_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(",".join(UCI_COLUMNS) + "\n" + "536365,A,B,6,12/1/2010 8:26,2.55,1.0,UK\n")
    assert sniff_layout(path) == "uci"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(IngestError) as raised:
        sniff_layout(path)
    assert raised.value.line == 1 and str(raised.value).startswith(f"{path}:1: unknown layout")


@pytest.mark.parametrize(
    ("raw", "expected", "timed"),
    [
        ("2023-01-15 13:45:00 -0500", datetime(2023, 1, 15, 13, 45), True),
        ("2023-01-15T13:45:00+05:30", datetime(2023, 1, 15, 13, 45), True),
        ("2023-01-15T13:45:00Z", datetime(2023, 1, 15, 13, 45), True),
        ("2023-01-15 13:45:00.250", datetime(2023, 1, 15, 13, 45, 0, 250_000), True),
        ("2023-01-15 13:45", datetime(2023, 1, 15, 13, 45), True),
        (" 2023-01-15 ", datetime(2023, 1, 15), False),
        ("12/1/2010 8:26", datetime(2010, 12, 1, 8, 26), True),
        ("19970101", datetime(1997, 1, 1), False),
        ("2023-02-30", None, None),
        ("13/1/2010 8:26", None, None),
        ("yesterday", None, None),
    ],
)
def test_parse_datetime_keeps_wall_time(raw: str, expected: datetime | None, timed: bool) -> None:
    parsed = parse_datetime(pl.Series([raw, "2020-01-01 00:00:00"]))
    assert parsed.values[0] == expected
    assert parsed.has_time[0] == timed
    assert parsed.invalid[0] == (expected is None)
    assert parsed.values[1] == datetime(2020, 1, 1)


def test_parse_float_separates_blank_from_garbage() -> None:
    parsed = parse_float(pl.Series(["1.5", " 2 ", "", "  ", "$5", "1,000", "NaN", "-inf", None]))
    assert parsed.values[:2].to_list() == [1.5, 2.0]
    assert parsed.blank.to_list() == [False, False, True, True, False, False, False, False, True]
    assert parsed.invalid.to_list() == [False, False, False, False, True, True, False, False, False]


def test_snake_case_channels() -> None:
    raw = pl.Series(["Web", "Point of Sale", " draft_order ", "Mobile-App", "", None])
    assert snake_case(raw).to_list() == [
        "web",
        "point_of_sale",
        "draft_order",
        "mobile_app",
        None,
        None,
    ]


def test_shopify_conversion() -> None:
    header = list(SHOPIFY_COLUMNS)
    rows = [
        ["1001", " C1 ", "2023-01-15 13:45:00 -0500", "SKU-1", "", "Mug", "Home", "Kitchen",
         "2", "19.90", "-1.00", "-5.00", "Point of Sale"],
        ["1002", "C2", "2023-01-16", "SKU-2", "P2", "", "", "", "1", "5", "0.5", "", "web"],
    ]  # fmt: skip
    accepted, rejected = convert("shopify", header, rows)
    assert rejected.height == 0
    assert accepted.schema == pl.Schema(ORDER_LINE_SCHEMA)
    first, second = accepted.rows(named=True)
    assert first["customer_id"] == "C1"
    assert first["ordered_at"] == datetime(2023, 1, 15, 13, 45) and first["has_time_of_day"]
    assert first["product_id"] == "SKU-1", "ProductId blank: falls back to the SKU"
    assert (first["discount"], first["refund"]) == (1.0, 5.0), "signs normalised to >= 0"
    assert first["channel"] == "point_of_sale"
    assert second["product_id"] == "P2" and second["product_title"] is None
    assert second["has_time_of_day"] is False and second["refund"] is None


def test_shopify_absent_optional_columns_are_null_not_zero() -> None:
    header = ["OrderID", "Customer_ID", "Date", "QTY", "Sales"]
    accepted, _ = convert("shopify", header, [["1", "c", "2023-01-01", "1", "2.5"]])
    row = accepted.row(0, named=True)
    for column in ("sku", "product_id", "category", "discount", "refund", "channel"):
        assert row[column] is None, column
    assert row["sales"] == 2.5


def test_uci_conversion_cancellations_become_refunds() -> None:
    rows = [
        ["536365", "85123A", "WHITE HEART", "6", "12/1/2010 8:26", "2.55", "17850.0", "UK"],
        ["C536379", "D", "Discount", "-2", "12/1/2010 9:41", "27.50", "14527.0", "UK"],
        ["536380", "X", "Bad", "-3", "12/1/2010 9:41", "1.00", "14527", "UK"],
        ["A563185", "B", "Adjust bad debt", "1", "8/12/2011 14:50", "-11062.06", "", "UK"],
        ["A563186", "B", "Adjust bad debt", "1", "8/12/2011 14:51", "-11062.06", "9", "UK"],
    ]
    accepted, rejected = convert("uci", UCI_COLUMNS, rows)
    sale, refund = accepted.rows(named=True)
    assert sale["customer_id"] == "17850" and sale["sales"] == pytest.approx(15.3)
    assert sale["refund"] == 0.0 and sale["discount"] is None and sale["category"] is None
    assert sale["product_id"] == "85123A" and sale["product_title"] == "WHITE HEART"
    assert (refund["quantity"], refund["sales"], refund["refund"]) == (0.0, 0.0, 55.0)
    assert rejected.get_column("reason").to_list() == [
        "negative_quantity",
        "no_customer",
        "negative_amount",
    ]
    assert rejected.get_column("detail")[0] == "Quantity: '-3' is negative"


def test_cdnow_order_ids_stay_distinct_across_batches() -> None:
    columns = map_columns("cdnow", [])
    converter = make_converter(columns)

    def batch(lines: list[str]) -> pl.DataFrame:
        split = [line.split() for line in lines]
        return pl.DataFrame(
            {f"c{i}": [s[i] for s in split] for i in range(4)}
            | {"source_line": list(range(len(lines)))}
        )

    first = converter(batch(["00002 19970112 1 12.00", "00002 19970112 5 77.00"]))
    second = converter(batch(["00002 19970112 1 12.00", "00003 19970102 2 20.76"]))
    ids = [*first.frame.get_column("order_id"), *second.frame.get_column("order_id")]
    assert ids == ["00002-19970112", "00002-19970112-2", "00002-19970112-3", "00003-19970102"]
    assert second.frame.get_column("has_time_of_day").to_list() == [False, False]
    assert second.frame.get_column("product_id").null_count() == 2


def test_tickets_conversion_with_aliases() -> None:
    header = ["Ticket ID", "Customer ID", "Created At", "Channel", "tags", "CSAT"]
    rows = [
        ["T1", "C1", "2024-03-01T10:00:00Z", "Live Chat", "billing", "4"],
        ["T2", "C2", "2024-03-02 11:00:00", "email", "", "9"],
        ["", "C3", "2024-03-02 11:00:00", "email", "", ""],
    ]
    accepted, rejected = convert("tickets", header, rows)
    assert accepted.schema == pl.Schema(TICKET_SCHEMA)
    row = accepted.row(0, named=True)
    assert (row["channel"], row["topic"], row["satisfaction"]) == ("live_chat", "billing", 4.0)
    assert row["message_count"] is None and row["created_at"] == datetime(2024, 3, 1, 10)
    assert rejected.get_column("reason").to_list() == ["out_of_range", "missing_ticket_id"]
