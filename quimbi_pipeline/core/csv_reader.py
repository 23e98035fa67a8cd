"""Streaming readers that turn a delimited file into all-string batches with source lines."""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from quimbi_pipeline.core.source_file import FileFacts, python_codec

_POLARS_CHUNK_ROWS = 100_000
# A private-use character stands in for a bare CR while the csv module splits a line.
_BARE_CR = "\ue000"


class FastPathRefused(Exception):
    """Polars cannot read the file exactly as the csv module would; use the slow path."""


@dataclass
class RawBatch:
    """Raw string columns ``c0..`` plus ``source_line``, and rows the reader could not split."""

    frame: pl.DataFrame
    ragged: list[tuple[int, str, str, str]] = field(default_factory=list)


def _columns(width: int) -> list[str]:
    return [f"c{i}" for i in range(width)]


def read_polars(
    source: Path, header: list[str], header_lines: int, facts: FileFacts, batch_rows: int
) -> Iterator[RawBatch]:
    """Batches via polars; raises FastPathRefused whenever the csv module would disagree."""
    width, names = len(header), _columns(len(header))
    lazy = pl.scan_csv(
        source,
        infer_schema=False,
        empty_string_is_null=False,
        raise_if_empty=False,
        with_column_names=lambda found: [f"c{i}" for i in range(len(found))],
    )
    try:
        if lazy.collect_schema().names() != names:
            raise FastPathRefused("polars split the header differently")
    except pl.exceptions.PolarsError as error:
        raise FastPathRefused(str(error).split("\n", 1)[0]) from error
    rows = blank_rows = newlines_in_values = commas_in_values = 0
    for batch in _regroup(_polars_chunks(lazy.with_row_index("_row"), batch_rows), batch_rows):
        if facts.has_quotes:
            # Quoted fields may hold newlines (which shift later line numbers) and commas.
            counts = batch.select(
                nl=pl.sum_horizontal(pl.col(names).str.count_matches("\n", literal=True)),
                commas=pl.sum_horizontal(pl.col(names).str.count_matches(",", literal=True)),
            )
            embedded = counts.get_column("nl").cast(pl.Int64)
            commas_in_values += int(counts.get_column("commas").sum())
        else:
            embedded = pl.repeat(0, batch.height, dtype=pl.Int64, eager=True)
        lines = header_lines + 1 + newlines_in_values + embedded.cum_sum() - embedded
        batch = batch.with_columns(source_line=lines + batch.get_column("_row").cast(pl.Int64))
        # A blank line reads as a row of empty strings; the csv module skips it.
        blank = batch.select(pl.all_horizontal(pl.col(names) == "")).to_series()
        rows += batch.height
        blank_rows += int(blank.sum())
        newlines_in_values += int(embedded.sum())
        yield RawBatch(batch.filter(~blank).select(*names, "source_line"))
    # Polars pads short rows with empty strings; the counts expose them (and blank lines that
    # were really ",,,"), since every other comma and newline is accounted for.
    if facts.commas != header_commas(header) + (rows - blank_rows) * (width - 1) + commas_in_values:
        raise FastPathRefused("some row has fewer fields than the header")
    physical = facts.newlines + (0 if facts.ends_with_newline else 1)
    if physical != header_lines + rows + newlines_in_values:
        raise FastPathRefused("line count does not match the rows polars read")


def _polars_chunks(lazy: pl.LazyFrame, batch_rows: int) -> Iterator[pl.DataFrame]:
    # Polars reads ahead several chunks; small chunks keep that buffer small.
    chunks = iter(lazy.collect_batches(chunk_size=min(batch_rows, _POLARS_CHUNK_ROWS)))
    while True:
        try:
            yield next(chunks)
        except StopIteration:
            return
        except pl.exceptions.PolarsError as error:
            raise FastPathRefused(str(error).split("\n", 1)[0]) from error


def _regroup(chunks: Iterator[pl.DataFrame], batch_rows: int) -> Iterator[pl.DataFrame]:
    """Re-cut a stream of frames into frames of exactly ``batch_rows`` rows (the last fewer)."""
    pending: pl.DataFrame | None = None
    for chunk in chunks:
        pending = chunk if pending is None else pl.concat([pending, chunk], rechunk=False)
        while pending.height >= batch_rows:
            yield pending.slice(0, batch_rows)
            pending = pending.slice(batch_rows)
    if pending is not None and pending.height:
        yield pending


def header_commas(header: list[str]) -> int:
    """Commas in the header's text: separators plus any inside quoted names."""
    return len(header) - 1 + sum(name.count(",") for name in header)


# The csv module ends a record at a bare CR, which polars (and this module's notion of a
# physical line) treats as data; masking it keeps both readers in agreement.
class _LineTap:
    """Line iterator that remembers the lines of the current record and hides bare CRs."""

    def __init__(self, lines: Iterator[str], mask_bare_cr: bool) -> None:
        self._lines, self._mask, self.taken, self.masked = lines, mask_bare_cr, [], False

    def __iter__(self) -> "_LineTap":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        if self._mask and "\r" in line:
            end = 2 if line.endswith("\r\n") else 1 if line.endswith("\n") else 0
            body = line[: len(line) - end]
            if "\r" in body:
                self.masked = True
                line = body.replace("\r", _BARE_CR) + line[len(body) :]
        return line

    def next_record(self) -> None:
        """Forget the lines of the previous record."""
        self.taken.clear()
        self.masked = False


def _json(fields: list[str]) -> str:
    # Compact, like polars' json_encode of the rows that could be split.
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _ragged(line: int, fields: list[str], width: int) -> tuple[int, str, str, str]:
    reason = "too_many_fields" if len(fields) > width else "too_few_fields"
    detail = f"expected {width} fields, found {len(fields)}"
    return line, reason, detail, _json(fields)


def _frame(rows: list[list[str]], lines: list[int], width: int) -> pl.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]
    data = {
        name: pl.Series(name, col, dtype=pl.String)
        for name, col in zip(_columns(width), columns, strict=True)
    }
    return pl.DataFrame({**data, "source_line": pl.Series(lines, dtype=pl.Int64)})


def read_records(
    path: Path, encoding: str, width: int, skip_lines: int, batch_rows: int, *, csv_split: bool
) -> Iterator[RawBatch]:
    """Batches via the csv module (or whitespace splitting for CDNOW), rejecting ragged rows."""
    codec, errors = python_codec(encoding)
    # newline="\n": a line is what ends in LF, the same physical lines polars counts.
    with path.open(encoding=codec, errors=errors, newline="\n") as stream:
        tap = _LineTap(iter(stream), mask_bare_cr=csv_split)
        records = csv.reader(tap) if csv_split else (line.split() for line in tap)
        consumed, rows, lines, ragged, frames, framed = 0, [], [], [], [], 0
        while True:
            tap.next_record()
            try:
                fields = next(records)
            except StopIteration:
                break
            except csv.Error as error:
                text = "".join(tap.taken)
                ragged.append((consumed + 1, "unparseable_row", str(error), _json([text])))
                consumed += len(tap.taken)
                continue
            start, consumed = consumed + 1, consumed + len(tap.taken)
            if start <= skip_lines or not fields:
                continue
            if tap.masked:
                fields = [value.replace(_BARE_CR, "\r") for value in fields]
            if len(fields) == width:
                rows.append(fields)
                lines.append(start)
            else:
                ragged.append(_ragged(start, fields, width))
            # Python strings cost far more than polars ones: convert them every few rows.
            if len(rows) >= _POLARS_CHUNK_ROWS:
                frames.append(_frame(rows, lines, width))
                framed, rows, lines = framed + len(rows), [], []
            if framed + len(rows) + len(ragged) >= batch_rows:
                yield RawBatch(pl.concat([*frames, _frame(rows, lines, width)]), ragged)
                rows, lines, ragged, frames, framed = [], [], [], [], 0
        if framed or rows or ragged:
            yield RawBatch(pl.concat([*frames, _frame(rows, lines, width)]), ragged)
