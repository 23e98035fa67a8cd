"""Ingesting one export file: detect its layout, validate every row, write parquet atomically."""

import ctypes
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from quimbi_pipeline.core.conversions import make_converter
from quimbi_pipeline.core.csv_reader import FastPathRefused, RawBatch, read_polars, read_records
from quimbi_pipeline.core.layouts import (
    CDNOW_COLUMNS,
    LAYOUTS,
    ColumnMap,
    LayoutError,
    detect_layout,
    drop_kind,
    is_cdnow_header,
    map_columns,
    sniff_layout,
)
from quimbi_pipeline.core.parquet_parts import PartWriter
from quimbi_pipeline.core.schema import ORDER_LINE_SCHEMA, REJECTED_SCHEMA, TICKET_SCHEMA
from quimbi_pipeline.core.source_file import (
    FileFacts,
    Head,
    IngestError,
    file_sha256,
    read_head,
    scan_file,
    transcode_to_utf8,
)
from quimbi_pipeline.core.validation import (
    SeenHashes,
    ragged_frame,
    record_keys,
    split_batch,
    value_hashes,
)

__all__ = [
    "LAYOUTS",
    "IngestError",
    "IngestReport",
    "drop_kind",
    "file_sha256",
    "ingest_file",
    "sniff_layout",
]

logger = logging.getLogger(__name__)
_SLICE_ROWS = 250_000


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run read, kept and rejected; also written as ``manifest.json``."""

    path: Path
    drop_id: str
    layout: str
    kind: str
    sha256: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    customers: int
    first_at: datetime | None
    last_at: datetime | None
    seconds: float

    def to_dict(self) -> dict:
        """A JSON-able dict: paths as strings, timestamps as ISO 8601."""
        data = asdict(self)
        data["path"] = str(self.path)
        for key in ("first_at", "last_at"):
            data[key] = data[key].isoformat() if data[key] is not None else None
        return data


@dataclass(frozen=True)
class _Plan:
    """How to read one file: its layout, column map, header and the lines the header takes."""

    layout: str
    columns: ColumnMap
    header: list[str]
    header_lines: int


@dataclass
class _Tally:
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    customers: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None


def _plan(path: Path, head: Head, layout: str) -> _Plan:
    if layout == "cdnow":
        header_lines = 1 if is_cdnow_header(head.first_line) else 0
        return _Plan(layout, map_columns(layout, CDNOW_COLUMNS), list(CDNOW_COLUMNS), header_lines)
    try:
        columns = map_columns(layout, head.first_record)
    except LayoutError as error:
        raise IngestError(path, 1, str(error)) from error
    return _Plan(layout, columns, head.first_record, head.record_lines)


def _write_batches(
    batches: Iterator[RawBatch], plan: _Plan, drop_id: str, out: Path, rows_per_part: int
) -> _Tally:
    """Convert, validate and write every batch; returns the counts for the report."""
    orders = drop_kind(plan.layout) == "orders"
    schema = ORDER_LINE_SCHEMA if orders else TICKET_SCHEMA
    at = "ordered_at" if orders else "created_at"
    accepted_parts = PartWriter(out / "accepted", schema, rows_per_part)
    rejected_parts = PartWriter(out / "rejected", REJECTED_SCHEMA, rows_per_part)
    convert, keys = make_converter(plan.columns), record_keys(plan.header)
    # CDNOW lines carry no order id, so two identical lines are two purchases, not a repeat.
    seen_rows = None if plan.layout == "cdnow" else SeenHashes()
    customers, tally = SeenHashes(), _Tally()
    for batch in batches:
        accepted, rejected = split_batch(convert(batch.frame), keys, schema, drop_id, seen_rows)
        if batch.ragged:
            ragged = ragged_frame(batch.ragged, drop_id)
            rejected = pl.concat([rejected, ragged]).sort("source_line", maintain_order=True)
        tally.rows_read += batch.frame.height + len(batch.ragged)
        tally.accepted += accepted.height
        tally.rejected += rejected.height
        tally.reasons.update(rejected.get_column("reason").to_list())
        accepted_parts.write(accepted)
        rejected_parts.write(rejected)
        if accepted.height:
            fresh = ~customers.add(value_hashes(accepted.get_column("customer_id").unique()))
            tally.customers += int(fresh.sum())
            low, high = accepted.get_column(at).min(), accepted.get_column(at).max()
            tally.first_at = low if tally.first_at is None else min(tally.first_at, low)
            tally.last_at = high if tally.last_at is None else max(tally.last_at, high)
    accepted_parts.close()
    rejected_parts.close()
    return tally


def _read_and_write(
    path: Path,
    facts: FileFacts,
    plan: _Plan,
    drop_id: str,
    workspace: Path,
    batch_rows: int,
    reader: str,
) -> _Tally:
    out, width = workspace / "out", len(plan.header)
    # Raw text is parsed and validated in slices of at most _SLICE_ROWS rows; only the much
    # smaller converted rows are buffered up to a whole part, which keeps memory flat.
    slice_rows = min(batch_rows, _SLICE_ROWS)
    if plan.layout == "cdnow":
        lines = read_records(
            path, facts.encoding, width, plan.header_lines, slice_rows, csv_split=False
        )
        return _write_batches(lines, plan, drop_id, out, batch_rows)
    if reader == "auto":
        utf8 = path if facts.encoding == "utf-8" else transcode_to_utf8(path, workspace / "u.csv")
        try:
            batches = read_polars(utf8, plan.header, plan.header_lines, facts, slice_rows)
            return _write_batches(batches, plan, drop_id, out, batch_rows)
        except FastPathRefused as why:
            logger.info("%s: polars reader refused (%s); re-reading with csv", path, why)
            shutil.rmtree(out, ignore_errors=True)
    records = read_records(
        path, facts.encoding, width, plan.header_lines, slice_rows, csv_split=True
    )
    return _write_batches(records, plan, drop_id, out, batch_rows)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return (
        renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0
    )


def _publish(new: Path, out_dir: Path, workspace: Path) -> None:
    """Put ``new`` at ``out_dir`` so readers see the old output or the new, never a mix."""
    if not out_dir.exists():
        new.rename(out_dir)
    elif not _exchange(new, out_dir):
        # Without an atomic swap the old output is moved aside first (a brief gap, no mix).
        out_dir.rename(workspace / "previous")
        new.rename(out_dir)


def ingest_file(
    path: Path,
    drop_id: str,
    out_dir: Path,
    *,
    layout: str | None = None,
    batch_rows: int = 1_000_000,
    reader: Literal["auto", "python"] = "auto",
) -> IngestReport:
    """Read, validate and write one export to ``out_dir`` (accepted/, rejected/, manifest).

    Args:
        path: The CSV (or CDNOW log) to ingest.
        drop_id: The drop the file belongs to, stamped on every output row.
        out_dir: Replaced as a whole once everything is written.
        layout: One of LAYOUTS to skip detection; None sniffs the header.
        batch_rows: Rows per parquet part (and at most per processing batch).
        reader: "python" forces the csv-module reader (for tests and benchmarks).
    """
    started = time.perf_counter()
    path, out_dir = Path(path), Path(out_dir)
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be positive, got {batch_rows}")
    if layout is not None:
        drop_kind(layout)
    facts = scan_file(path)
    head = read_head(path, facts.encoding)
    if layout is None:
        try:
            layout = detect_layout(head.first_record, head.first_line)
        except LayoutError as error:
            raise IngestError(path, 1, str(error)) from error
    plan = _plan(path, head, layout)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tally = _read_and_write(path, facts, plan, drop_id, workspace, batch_rows, reader)
        if tally.rows_read != tally.accepted + tally.rejected:
            raise AssertionError(f"{path}: {tally} does not add up")
        report = IngestReport(
            path=path,
            drop_id=drop_id,
            layout=layout,
            kind=drop_kind(layout),
            sha256=facts.sha256,
            rows_read=tally.rows_read,
            rows_accepted=tally.accepted,
            rows_rejected=tally.rejected,
            rejected_by_reason=dict(sorted(tally.reasons.items())),
            customers=tally.customers,
            first_at=tally.first_at,
            last_at=tally.last_at,
            seconds=round(time.perf_counter() - started, 3),
        )
        manifest = json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
        (workspace / "out" / "manifest.json").write_text(manifest + "\n", encoding="utf-8")
        _publish(workspace / "out", out_dir, workspace)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return report
