"""ingest_file end to end on small generated files: every awkward input, both readers."""

import csv
import hashlib
import io
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quimbi_pipeline.core import ingest as ingest_module
from quimbi_pipeline.core.ingest import (
    IngestError,
    IngestReport,
    file_sha256,
    ingest_file,
    sniff_layout,
)
from quimbi_pipeline.core.schema import (
    ORDER_LINE_SCHEMA,
    REJECTED_SCHEMA,
    SHOPIFY_COLUMNS,
    TICKET_SCHEMA,
)
from quimbi_pipeline.core.validation import SeenHashes
from quimbi_pipeline_tests.datasets import cdnow_master

DEFAULTS = {
    "OrderID": "1001", "Customer_ID": "C1", "Date": "2023-01-15 13:45:00 -0500", "Sku": "SKU-1",
    "ProductId": "P1", "Title": "Mug", "ProductType": "Home", "Category": "Kitchen", "QTY": "1",
    "Sales": "10.00", "TotalDiscount": "0", "Refunds": "0", "Source": "web",
}  # fmt: skip


def order(**fields: str) -> list[str]:
    """One Shopify row, defaults overridden by keyword (column names as in the header)."""
    row = DEFAULTS | fields
    return [row[column] for column in SHOPIFY_COLUMNS]


def csv_text(
    rows: list[list[str]], header=SHOPIFY_COLUMNS, newline: str = "\n", quoting=csv.QUOTE_MINIMAL
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@dataclass
class Result:
    report: IngestReport
    accepted: pl.DataFrame
    rejected: pl.DataFrame


def ingest(tmp_path: Path, content: str | bytes, name: str = "in", **kwargs) -> Result:
    """Write ``content``, ingest it and check the invariants every ingest must keep."""
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    out = tmp_path / f"{name}-out"
    report = ingest_file(path, "drop-1", out, **kwargs)
    accepted = pl.read_parquet(out / "accepted")
    rejected = pl.read_parquet(out / "rejected")
    assert report.rows_read == report.rows_accepted + report.rows_rejected
    assert (accepted.height, rejected.height) == (report.rows_accepted, report.rows_rejected)
    assert sum(report.rejected_by_reason.values()) == report.rows_rejected
    assert json.loads((out / "manifest.json").read_text()) == report.to_dict()
    kind_schema = TICKET_SCHEMA if report.kind == "tickets" else ORDER_LINE_SCHEMA
    assert accepted.schema == pl.Schema(kind_schema)
    assert rejected.schema == pl.Schema(REJECTED_SCHEMA)
    assert accepted.get_column("source_line").is_sorted()
    assert rejected.get_column("source_line").is_sorted()
    return Result(report, accepted, rejected)


def reasons(result: Result) -> list[tuple[int, str]]:
    return list(result.rejected.select("source_line", "reason").iter_rows())


def fell_back(caplog: pytest.LogCaptureFixture) -> bool:
    return "polars reader refused" in caplog.text


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="quimbi_pipeline.core.ingest")


def test_clean_file_fills_report_and_manifest(tmp_path: Path) -> None:
    rows = [order(), order(OrderID="1002", Customer_ID="C2", Date="2023-02-01 08:00:00")]
    result = ingest(tmp_path, csv_text(rows))
    report = result.report
    assert (report.layout, report.kind, report.rows_read, report.customers) == (
        "shopify",
        "orders",
        2,
        2,
    )
    assert report.sha256 == hashlib.sha256((tmp_path / "in.csv").read_bytes()).hexdigest()
    assert report.sha256 == file_sha256(tmp_path / "in.csv")
    assert (report.first_at, report.last_at) == (
        datetime(2023, 1, 15, 13, 45),
        datetime(2023, 2, 1, 8),
    )
    assert result.accepted.get_column("source_line").to_list() == [2, 3]
    assert result.accepted.get_column("drop_id").unique().to_list() == ["drop-1"]


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        (b"", 1, "empty file"),
        (random.Random(7).randbytes(5000), 1, "binary"),
        (b"\x1f\x8b\x08\x00" + b"\x01\x02\x03abc" * 100, 1, "binary"),
        (b"foo,bar\n1,2\n", 1, "unknown layout"),
        (b"OrderID,Customer_ID,Date,QTY,Sales\r1,c,2023-01-01,1,2\r", 1, "bare CR"),
        (csv_text([order()]).replace("Sales", "Revenue").encode(), 1, "'Sales'"),
    ],
    ids=["empty", "random-bytes", "gzip", "unknown-header", "cr-only", "missing-column"],
)
def test_unreadable_files_raise_ingest_error(
    tmp_path: Path, content: bytes, line: int, needle: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(IngestError) as raised:
        ingest_file(path, "d", tmp_path / "out")
    assert raised.value.line == line
    assert str(raised.value).startswith(f"{path}:{line}: ")
    assert needle in str(raised.value)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"], "no temp dir left behind"


def test_missing_column_error_lists_the_header_found(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("OrderID,Customer_ID,Date,QTY\n1,c,2023-01-01,1\n")
    with pytest.raises(IngestError, match=r"'Sales'.*'OrderID', 'Customer_ID', 'Date', 'QTY'"):
        ingest_file(path, "d", tmp_path / "out")


def test_missing_file_raises_without_line(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as raised:
        ingest_file(tmp_path / "nope.csv", "d", tmp_path / "out")
    assert raised.value.line is None and "cannot read file" in str(raised.value)


@pytest.mark.parametrize("text", [csv_text([]), csv_text([]).rstrip("\n")])
def test_header_only_is_an_empty_drop(tmp_path: Path, text: str) -> None:
    result = ingest(tmp_path, text)
    report = result.report
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (0, 0, 0)
    assert (report.customers, report.first_at, report.rejected_by_reason) == (0, None, {})
    assert result.accepted.height == 0 and result.rejected.height == 0


def test_row_level_problems_are_rejected_with_reason_detail_and_record(tmp_path: Path) -> None:
    rows = [
        order(),  # line 2: fine
        order(Date="2023-13-45"),
        order(Date=""),
        order(Sales="abc"),
        order(QTY="1,5"),
        order(Sales="NaN"),
        order(Refunds="-inf"),
        order(Sales="1e12"),
        order(QTY="5000000"),
        order(QTY="-1"),
        order(Sales="-3"),
        order(Customer_ID=""),
        order(Customer_ID="nan"),
        order(OrderID=" "),
        order(Sales=""),
    ]
    result = ingest(tmp_path, csv_text(rows))
    assert reasons(result) == [
        (3, "malformed_date"),
        (4, "malformed_date"),
        (5, "non_numeric_amount"),
        (6, "non_numeric_amount"),
        (7, "non_finite_amount"),
        (8, "non_finite_amount"),
        (9, "absurd_amount"),
        (10, "absurd_amount"),
        (11, "negative_quantity"),
        (12, "negative_amount"),
        (13, "no_customer"),
        (14, "no_customer"),
        (15, "missing_order_id"),
        (16, "missing_amount"),
    ]
    details = result.rejected.get_column("detail").to_list()
    assert details[0] == "Date: '2023-13-45' is not a date"
    assert details[3] == "QTY: '1,5' is not a number"
    assert details[5] == "Refunds: '-inf' is not finite"
    assert details[7] == "QTY: '5000000' exceeds 1,000,000 in size"
    record = json.loads(result.rejected.get_column("record")[2])
    assert record == dict(zip(SHOPIFY_COLUMNS, order(Sales="abc"), strict=True))
    assert result.report.rejected_by_reason["no_customer"] == 2
    assert result.accepted.get_column("source_line").to_list() == [2]


def test_seen_hashes_matches_a_python_set() -> None:
    rng, seen, reference = np.random.default_rng(3), SeenHashes(), set()
    for size in [0, 5, 1, 300, 40, 2_000, 7, 2_000]:
        hashes = rng.integers(0, 500, size=size).astype(np.uint64)
        expected = []
        for value in hashes.tolist():
            expected.append(value in reference)
            reference.add(value)
        assert seen.add(hashes).tolist() == expected
    assert len(seen) == len(reference)


def test_exact_duplicates_are_rejected_and_the_first_kept_across_batches(tmp_path: Path) -> None:
    rows = [order(), order(OrderID="2"), order(), order(Sales="11"), order(OrderID="2"), order()]
    result = ingest(tmp_path, csv_text(rows), batch_rows=2)
    assert reasons(result) == [(4, "duplicate_row"), (6, "duplicate_row"), (7, "duplicate_row")]
    assert result.accepted.get_column("source_line").to_list() == [2, 3, 5]
    assert result.rejected.get_column("detail")[0] == "identical to an earlier row of this file"


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    result = ingest(tmp_path, b"\xef\xbb\xbf" + csv_text([order(OrderID="77")]).encode())
    assert result.accepted.get_column("order_id").to_list() == ["77"]
    assert sniff_layout(tmp_path / "in.csv") == "shopify"


@pytest.mark.parametrize("reader", ["auto", "python"])
def test_latin1_and_cp1252_bytes_survive(tmp_path: Path, reader: str) -> None:
    text = csv_text([order(Title="Café Crème"), order(Title="5€ off", Sales="x")])
    content = text.encode("cp1252") + b"1003,C9,2023-01-01,S,P,Caf\x81,,,1,1,,,web\n"
    result = ingest(tmp_path, content, reader=reader)
    assert result.accepted.get_column("product_title").to_list() == ["Café Crème", "Caf\x81"]
    assert json.loads(result.rejected.get_column("record")[0])["Title"] == "5€ off"


def test_crlf_line_endings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [order(Title="two\r\nlines"), order(Source="Point of Sale"), order(Sales="bad")]
    result = ingest(tmp_path, csv_text(rows, newline="\r\n") + "\r\n")
    assert result.accepted.get_column("product_title").to_list() == ["two\r\nlines", "Mug"]
    assert result.accepted.get_column("channel").to_list() == ["web", "point_of_sale"]
    assert reasons(result) == [(5, "non_numeric_amount")]
    assert not fell_back(caplog)


def test_quoted_commas_and_newlines_keep_physical_line_numbers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        order(Title='Mug, "large"\nwith\nthree lines'),
        order(Title="plain", Sales="oops"),
        order(Title="a,b,c", Customer_ID="C2"),
    ]
    text = csv_text(rows)
    result = ingest(tmp_path, text + "\n\n")
    titles = result.accepted.get_column("product_title").to_list()
    assert titles == ['Mug, "large"\nwith\nthree lines', "a,b,c"]
    assert result.accepted.get_column("source_line").to_list() == [2, 6]
    assert reasons(result) == [(5, "non_numeric_amount")]
    assert text.splitlines()[4].startswith("1001,C1"), "line 5 really is where that row starts"
    assert not fell_back(caplog)


def test_ragged_rows_are_rejected_not_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = csv_text([order(), order(OrderID="2")])
    text += ",".join(order(OrderID="3")) + ",surplus\n"
    text += "1004,C4,2023-01-01\n"
    text += ",".join(order(OrderID="5")) + "\n"
    result = ingest(tmp_path, text)
    assert fell_back(caplog)
    assert reasons(result) == [(4, "too_many_fields"), (5, "too_few_fields")]
    assert json.loads(result.rejected.get_column("record")[0])[-1] == "surplus"
    assert result.rejected.get_column("record")[1] == '["1004","C4","2023-01-01"]'
    assert result.rejected.get_column("detail")[0] == "expected 13 fields, found 14"
    assert result.accepted.get_column("order_id").to_list() == ["1001", "2", "5"]


def test_short_rows_polars_would_pad_are_rejected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = csv_text([order()]) + ",".join(order(OrderID="2")[:-1]) + "\n"
    text += "," * 12 + "\n" + "   \n"
    result = ingest(tmp_path, text)
    assert fell_back(caplog)
    assert reasons(result) == [(3, "too_few_fields"), (4, "no_customer"), (5, "too_few_fields")]
    assert result.accepted.get_column("order_id").to_list() == ["1001"]


@pytest.mark.parametrize("reader", ["auto", "python"])
def test_bare_carriage_returns_are_data(tmp_path: Path, reader: str) -> None:
    text = csv_text([order(Title="bad\rtitle"), order(Title="quoted\r,\rx", OrderID="2")])
    result = ingest(tmp_path, text, reader=reader)
    titles = result.accepted.get_column("product_title").to_list()
    assert titles == ["bad\rtitle", "quoted\r,\rx"]
    assert result.accepted.get_column("source_line").to_list() == [2, 3]


def test_a_row_the_csv_module_cannot_split_is_rejected(tmp_path: Path) -> None:
    limit = csv.field_size_limit(1_000)
    try:
        text = csv_text([order(), order(Title="t" * 2_000, OrderID="2"), order(OrderID="3")])
        result = ingest(tmp_path, text, reader="python")
    finally:
        csv.field_size_limit(limit)
    assert reasons(result) == [(3, "unparseable_row")]
    assert "field larger than field limit" in result.rejected.get_column("detail")[0]
    assert json.loads(result.rejected.get_column("record")[0])[0].startswith("2,C1,")
    assert result.accepted.get_column("order_id").to_list() == ["1001", "3"]


def test_stray_quote_inside_a_field_falls_back_and_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = csv_text([order()]) + '1002,C2,2023-01-01,S,P,5" disk,,,1,1,,,web\n'
    result = ingest(tmp_path, text)
    assert result.accepted.get_column("product_title").to_list() == ["Mug", '5" disk']
    assert fell_back(caplog)


def test_very_long_field(tmp_path: Path) -> None:
    title = "x" * 1_000_000
    for reader in ("auto", "python"):
        result = ingest(tmp_path, csv_text([order(Title=title), order()]), reader=reader)
        assert result.accepted.get_column("product_title").str.len_chars().to_list() == [
            1_000_000,
            3,
        ]


@pytest.mark.parametrize(
    "customer", ["'; DROP TABLE x; --", 'O\'Brien "Bob", Jr.', "Robert'); DELETE FROM orders;"]
)
def test_hostile_customer_ids_are_kept_verbatim(tmp_path: Path, customer: str) -> None:
    result = ingest(tmp_path, csv_text([order(Customer_ID=customer)]))
    assert result.accepted.get_column("customer_id").to_list() == [customer]


def _mixed_file() -> str:
    rows = [order(OrderID=str(i), Customer_ID=f"C{i % 4}") for i in range(12)]
    rows[3] = order(Title='quoted, "comma"\nand newline')
    rows[5] = order(Sales="-2")
    rows[7] = rows[1]
    rows[9] = order(Date="not a date", Customer_ID="'; DROP TABLE x; --")
    lines = csv_text(rows, newline="\r\n").split("\r\n")
    lines.insert(6, "")  # a blank line in the middle
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("batch_rows", [1, 2, 5])
def test_readers_and_batch_sizes_agree(
    tmp_path: Path, batch_rows: int, caplog: pytest.LogCaptureFixture
) -> None:
    text = _mixed_file()
    whole = ingest(tmp_path, text, name="whole")
    assert not fell_back(caplog), "polars accepts the file, so both readers really ran"
    assert reasons(whole) == [(9, "negative_amount"), (11, "duplicate_row"), (13, "malformed_date")]
    for reader in ("auto", "python"):
        other = ingest(tmp_path, text, name=f"{reader}{batch_rows}", reader=reader,
                       batch_rows=batch_rows)  # fmt: skip
        assert other.accepted.equals(whole.accepted)
        assert other.rejected.equals(whole.rejected)
        mine, theirs = other.report.to_dict(), whole.report.to_dict()
        for volatile in ("seconds", "path"):
            mine.pop(volatile), theirs.pop(volatile)
        assert mine == theirs


_AWKWARD = ["plain", "a,b", 'say "hi"', "two\nlines", "crlf\r\ninside", "", "  pad  ", "Café", "5"]


def _random_file(rng: random.Random) -> str:
    """A small Shopify file with random quoting, line breaks, blank lines and line endings."""
    newline = rng.choice(["\n", "\r\n"])
    quoting = rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
    records = [csv_text([], newline=newline, quoting=quoting)]
    for i in range(rng.randrange(0, 8)):
        row = order(OrderID=str(i % 5), Customer_ID=rng.choice(["C1", "C2", "", "x,y"]),
                    Title=rng.choice(_AWKWARD), Category=rng.choice(_AWKWARD),
                    Sales=rng.choice(["1.5", "-2", "abc", " 3 "]))  # fmt: skip
        records.append(csv_text([row], [], newline, quoting)[len(newline) :])
        if rng.random() < 0.2:
            records.append(newline)
    text = rng.choice(["", "\ufeff"]) + "".join(records)
    return text if rng.random() < 0.8 else text.rstrip("\r\n")


@pytest.mark.parametrize("seed", range(3))
def test_readers_agree_on_random_files(
    tmp_path: Path, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    rng, fast = random.Random(seed), 0
    for n in range(12):
        text = _random_file(rng)
        caplog.clear()
        auto = ingest(tmp_path, text, name=f"a{n}", batch_rows=rng.choice([1, 3, 100]))
        fast += not fell_back(caplog)
        python = ingest(tmp_path, text, name=f"p{n}", reader="python")
        assert auto.accepted.equals(python.accepted), text
        assert auto.rejected.equals(python.rejected), text
    assert fast >= 9, "most random files stay on the polars path, so the comparison is real"


def test_output_is_replaced_as_a_whole(tmp_path: Path) -> None:
    path, out = tmp_path / "in.csv", tmp_path / "lake" / "drop"
    path.write_text(csv_text([order(OrderID=str(i)) for i in range(5)]))
    ingest_file(path, "d", out, batch_rows=1)
    assert len(list((out / "accepted").iterdir())) == 5
    path.write_text(csv_text([order(OrderID="new")]))
    ingest_file(path, "d", out)
    assert [p.name for p in (out / "accepted").iterdir()] == ["part-00000.parquet"]
    assert pl.read_parquet(out / "accepted").get_column("order_id").to_list() == ["new"]
    path.write_bytes(b"")
    with pytest.raises(IngestError):
        ingest_file(path, "d", out)
    assert pl.read_parquet(out / "accepted").get_column("order_id").to_list() == ["new"]
    assert [p.name for p in out.parent.iterdir()] == ["drop"], "no temp dirs left"


def test_parts_hold_batch_rows_rows(tmp_path: Path) -> None:
    rows = [order(OrderID=str(i)) for i in range(7)] + [order(OrderID="x", Sales="bad")]
    ingest(tmp_path, csv_text(rows), batch_rows=3)
    parts = sorted((tmp_path / "in-out" / "accepted").iterdir())
    assert [pl.read_parquet(p).height for p in parts] == [3, 3, 1]
    rejected = sorted((tmp_path / "in-out" / "rejected").iterdir())
    assert [pl.read_parquet(p).height for p in rejected] == [1]


def test_output_is_replaced_without_an_atomic_swap_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "_exchange", lambda first, second: False)
    path, out = tmp_path / "in.csv", tmp_path / "lake" / "drop"
    for order_id in ("old", "new"):
        path.write_text(csv_text([order(OrderID=order_id)]))
        ingest_file(path, "d", out)
    assert pl.read_parquet(out / "accepted").get_column("order_id").to_list() == ["new"]
    assert [p.name for p in out.parent.iterdir()] == ["drop"]


def test_forced_layout_and_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(csv_text([order()]))
    assert ingest_file(path, "d", tmp_path / "o", layout="shopify").rows_accepted == 1
    with pytest.raises(IngestError, match="missing required column 'InvoiceNo'"):
        ingest_file(path, "d", tmp_path / "o", layout="uci")
    with pytest.raises(ValueError, match="unknown layout"):
        ingest_file(path, "d", tmp_path / "o", layout="excel")
    with pytest.raises(ValueError, match="batch_rows"):
        ingest_file(path, "d", tmp_path / "o", batch_rows=0)


def test_uci_file_in_latin1(tmp_path: Path) -> None:
    text = (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,CAFÉ SET,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
        "C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527.0,United Kingdom\n"
        "536381,22,No customer,1,12/1/2010 9:41,1.00,,United Kingdom\n"
        "536382,22,Bad,-4,2010-12-01 09:45:00,1.00,14527.0,United Kingdom\n"
    )
    result = ingest(tmp_path, text.encode("latin-1"))
    assert result.report.layout == "uci"
    assert result.accepted.get_column("product_title").to_list() == ["CAFÉ SET", "Discount"]
    assert result.accepted.get_column("refund").to_list() == [0.0, 27.5]
    assert result.accepted.get_column("customer_id").to_list() == ["17850", "14527"]
    assert reasons(result) == [(4, "no_customer"), (5, "negative_quantity")]


def test_tickets_file(tmp_path: Path) -> None:
    text = (
        "Ticket ID,Customer ID,Created At,Channel,tags,messages,resolution_hours,satisfaction\n"
        "T1,C1,2024-03-01T10:00:00Z,Email,billing,3,4.5,5\n"
        "T2,C1,2024-03-04 09:30:00,Live Chat,,1,,\n"
        "T3,C2,2024-03-05,phone,refund,-2,1,3\n"
    )
    result = ingest(tmp_path, text)
    assert (result.report.layout, result.report.kind, result.report.customers) == (
        "tickets",
        "tickets",
        1,
    )
    assert result.report.last_at == datetime(2024, 3, 4, 9, 30)
    assert result.accepted.get_column("channel").to_list() == ["email", "live_chat"]
    assert reasons(result) == [(4, "negative_amount")]


def test_cdnow_synthetic_headerless(tmp_path: Path) -> None:
    text = (
        " 00001 19970101  1   11.77\r\n 00002 19970112  1   12.00\r\n 00002 19970112  1   12.00\r\n"
        " 00003 19970102  2  -20.76\r\n 00004 1997010 2 1.00\r\n 00005 19970103\r\n\r\n"
        " 00006 19970104  1    0.00\r\n"
    )
    result = ingest(tmp_path, text)
    assert result.report.layout == "cdnow"
    assert result.accepted.get_column("order_id").to_list() == [
        "00001-19970101", "00002-19970112", "00002-19970112-2", "00006-19970104",
    ]  # fmt: skip
    assert result.accepted.get_column("sales").to_list() == [11.77, 12.0, 12.0, 0.0]
    assert reasons(result) == [(4, "negative_amount"), (5, "malformed_date"), (6, "too_few_fields")]
    assert result.accepted.get_column("has_time_of_day").to_list() == [False] * 4


def test_real_cdnow_log(tmp_path: Path) -> None:
    path = cdnow_master()
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    data = [fields for fields in lines if fields[0].isdigit()]
    result = ingest(tmp_path, path.read_bytes())
    report = result.report
    assert report.layout == "cdnow" and report.rows_read == len(data) == 69_659
    negative = sum(float(fields[3]) < 0 for fields in data)
    assert report.rows_rejected == negative
    assert report.rejected_by_reason == ({"negative_amount": negative} if negative else {})
    zero = sum(float(fields[3]) == 0 for fields in data)
    assert zero + negative == 80, "the brief: 80 real rows have value <= 0"
    assert (result.accepted.get_column("sales") == 0).sum() == zero
    assert result.accepted.get_column("order_id").is_unique().all()
    assert report.customers == len({fields[0] for fields in data}) == 23_570
    assert (report.first_at, report.last_at) == (datetime(1997, 1, 1), datetime(1998, 6, 30))
    assert result.accepted.get_column("quantity").sum() == sum(int(f[2]) for f in data)
