"""Vectorised parsing of raw CSV strings into numbers, timestamps and snake_case labels."""

import re
from typing import NamedTuple

import polars as pl

# Tried in order, each only on the values the earlier ones could not parse, so the common case
# costs one strptime. Day-first dates (13/1/2010) are deliberately absent: they would be
# ambiguous with the month-first UCI layout.
DATETIME_FORMATS: tuple[tuple[str, bool], ...] = (
    ("%Y-%m-%d %H:%M:%S%.f", True),
    ("%Y-%m-%dT%H:%M:%S%.f", True),
    ("%Y-%m-%d %H:%M", True),
    ("%Y-%m-%dT%H:%M", True),
    ("%Y-%m-%d", False),
    ("%m/%d/%Y %H:%M:%S", True),
    ("%m/%d/%Y %H:%M", True),
    ("%m/%d/%Y", False),
    ("%Y%m%d", False),
)
# A UTC offset after a time of day is dropped: the schema keeps local wall-clock time.
_OFFSET_AFTER_TIME = r"(\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|[+-]\d\d:?\d\d)$"
_OFFSET_TAIL = re.compile(r"\s*(?:Z|UTC|GMT|[+-]\d\d:?\d\d)?")
# Above this many distinct tails the fast path would cost more than the regex it avoids.
_MAX_DISTINCT_TAILS = 1_000

# Spellings that spreadsheet and dataframe exports use for "no value" in an id column.
MISSING_ID_SPELLINGS: tuple[str, ...] = (
    "", "nan", "NaN", "NAN", "null", "NULL", "Null", "None", "none", "NONE", "N/A", "n/a",
)  # fmt: skip


class ParsedColumn(NamedTuple):
    """A parsed column plus masks of the raw values that were blank or unparseable."""

    values: pl.Series
    blank: pl.Series
    invalid: pl.Series


class ParsedDatetime(NamedTuple):
    """Parsed timestamps, whether each carried a time of day, and the failure masks."""

    values: pl.Series
    has_time: pl.Series
    blank: pl.Series
    invalid: pl.Series


def _falses(n: int) -> pl.Series:
    return pl.repeat(False, n, dtype=pl.Boolean, eager=True)


def parse_float(raw: pl.Series) -> ParsedColumn:
    """Cast strings to Float64; 'NaN' and 'inf' parse (to be judged later), '$5' does not."""
    values = raw.cast(pl.Float64, strict=False)
    blank, invalid = _falses(len(raw)), _falses(len(raw))
    missed = values.is_null()
    if missed.any():
        # Only the values the plain cast rejected pay for stripping padded spaces.
        index = missed.arg_true()
        stripped = raw.gather(index).str.strip_chars()
        retried = stripped.cast(pl.Float64, strict=False)
        is_blank = stripped.fill_null("") == ""
        values = values.scatter(index, retried)
        blank = blank.scatter(index, is_blank)
        invalid = invalid.scatter(index, retried.is_null() & ~is_blank)
    return ParsedColumn(values.rename(raw.name), blank, invalid)


def parse_datetime(raw: pl.Series) -> ParsedDatetime:
    """Parse ISO, ISO with offset, US M/D/YYYY and YYYYMMDD timestamps, keeping wall time."""
    n = len(raw)
    values = pl.repeat(None, n, dtype=pl.Datetime("us"), eager=True).rename(raw.name)
    has_time = pl.repeat(None, n, dtype=pl.Boolean, eager=True)
    todo_index = pl.int_range(0, n, dtype=pl.UInt32, eager=True)
    todo = raw

    def take(parsed: pl.Series, timed: bool) -> None:
        nonlocal values, has_time, todo_index, todo
        hit = parsed.is_not_null()
        values = values.scatter(todo_index.filter(hit), parsed.filter(hit))
        has_time = has_time.scatter(todo_index.filter(hit), timed)
        todo_index, todo = todo_index.filter(~hit), todo.filter(~hit)

    # Fast path for the usual "YYYY-MM-DD HH:MM:SS[ offset]": slicing beats a regex per row.
    tails = todo.str.slice(19)
    distinct = tails.unique()
    if len(distinct) <= _MAX_DISTINCT_TAILS:
        ok = [t for t in distinct.to_list() if t is not None and _OFFSET_TAIL.fullmatch(t)]
        head = todo.str.slice(0, 19).set(~tails.is_in(ok).fill_null(False), None)
        take(head.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False), True)
    if len(todo):
        todo = todo.str.strip_chars().str.replace(_OFFSET_AFTER_TIME, "${1}")
    for fmt, timed in DATETIME_FORMATS:
        if not len(todo):
            break
        take(todo.str.strptime(pl.Datetime("us"), fmt, strict=False), timed)
    blank, invalid = _falses(n), _falses(n)
    if len(todo):
        is_blank = todo.fill_null("") == ""
        blank = blank.scatter(todo_index, is_blank)
        invalid = invalid.scatter(todo_index, ~is_blank)
    return ParsedDatetime(values, has_time, blank, invalid)


def _snake(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", label.strip().lower()).strip("_")


def snake_case(raw: pl.Series) -> pl.Series:
    """Lower snake_case labels ('Point of Sale' -> 'point_of_sale'); blank becomes null."""
    # Channels and topics have few distinct values: convert each once, then map.
    distinct = [v for v in raw.unique().to_list() if v is not None]
    mapping = {v: (_snake(v) or None) for v in distinct}
    return raw.replace_strict(mapping, default=None, return_dtype=pl.String)


def blank_to_null(raw: pl.Series) -> pl.Series:
    """Strip surrounding spaces and turn empty strings into nulls."""
    stripped = raw.str.strip_chars()
    return stripped.set((stripped == "").fill_null(False), None)


def missing_id(raw: pl.Series) -> pl.Series:
    """True where an identifier is blank or spelled as a missing value ('nan', 'NULL', ...)."""
    return raw.str.strip_chars().is_in(MISSING_ID_SPELLINGS).fill_null(True)
