"""Splitting converted batches into accepted and rejected rows, remembering rows seen before."""

import numpy as np
import polars as pl

from quimbi_pipeline.core.conversions import Conversion
from quimbi_pipeline.core.schema import REJECTED_SCHEMA

DUPLICATE_DETAIL = "identical to an earlier row of this file"
# A fixed seed: the hashes only have to agree within one ingest run.
_SEED = 0x5EED
_DETAIL_CHARS = 200


# Memory is 8 bytes per distinct value; a lookup costs one binary search per run and there are
# at most log2(batches) runs, so remembering every row of a 10M-line file stays cheap.
class SeenHashes:
    """A set of 64-bit hashes kept as a few sorted runs, merged like a binary counter."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def add(self, hashes: np.ndarray) -> np.ndarray:
        """Add ``hashes``; True where a value was seen before (earlier, or earlier in the array)."""
        # Stable sort keeps the first occurrence of equal values first, so it is the one kept;
        # sorted needles also make the binary searches below cache-friendly.
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        seen_sorted = np.zeros(len(ordered), dtype=bool)
        seen_sorted[1:] = ordered[1:] == ordered[:-1]
        for run in self._runs:
            at = np.searchsorted(run, ordered).clip(max=len(run) - 1)
            seen_sorted |= run[at] == ordered
        fresh = ordered[~seen_sorted]
        if len(fresh):
            self._runs.append(fresh)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            # Timsort merges the two sorted runs in linear time.
            merged = np.concatenate([self._runs.pop(-2), self._runs.pop()])
            self._runs.append(np.sort(merged, kind="stable"))
        seen = np.empty(len(hashes), dtype=bool)
        seen[order] = seen_sorted
        return seen


def row_hashes(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """64-bit hashes of the raw fields of each row, for exact-duplicate detection."""
    return frame.select(columns).hash_rows(seed=_SEED).to_numpy()


def value_hashes(values: pl.Series) -> np.ndarray:
    """64-bit hashes of single values (customer ids), for distinct counts."""
    return values.hash(seed=_SEED).to_numpy()


def record_keys(header: list[str]) -> list[str]:
    """JSON keys for a header: blank names get a position, repeated names a suffix."""
    keys: list[str] = []
    for i, name in enumerate(header):
        key, n = name or f"column_{i + 1}", 2
        while key in keys:
            key, n = f"{name or f'column_{i + 1}'}_{n}", n + 1
        keys.append(key)
    return keys


def split_batch(
    conversion: Conversion,
    keys: list[str],
    schema: dict[str, pl.DataType],
    drop_id: str,
    seen_rows: SeenHashes | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the checks (and duplicate detection) and return (accepted, rejected) frames."""
    frame, checks = conversion.frame, conversion.checks
    raw = [f"c{i}" for i in range(len(keys))]
    # Most rows pass: find the failing ones cheaply, then name reasons for those alone.
    failing = frame.select(pl.any_horizontal(*(c.failed for c in checks), False)).to_series()
    reason = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    if failing.any():
        rows = failing.arg_true()
        named = frame[rows].select(
            pl.coalesce(*(pl.when(pl.col(c.failed)).then(pl.lit(c.reason)) for c in checks))
        )
        reason = reason.scatter(rows, named.to_series())
    if seen_rows is not None and frame.height:
        duplicate = pl.Series(seen_rows.add(row_hashes(frame, raw)))
        reason = reason.set(duplicate & reason.is_null(), "duplicate_row")
    keep = reason.is_null()
    accepted = frame.select(
        pl.lit(drop_id, pl.String).alias(name) if name == "drop_id" else pl.col(name).cast(dtype)
        for name, dtype in schema.items()
    )
    if not keep.all():
        accepted = accepted.filter(keep)
    details = [pl.when(pl.col(c.failed)).then(c.detail) for c in checks]
    record = pl.struct(pl.col(c).alias(k) for c, k in zip(raw, keys, strict=True))
    rejected = (
        frame.with_columns(_reason=reason)
        .filter(~keep)
        .select(
            "source_line",
            reason=pl.col("_reason"),
            detail=pl.coalesce(*details, pl.lit(DUPLICATE_DETAIL)).str.slice(0, _DETAIL_CHARS),
            record=record.struct.json_encode(),
            drop_id=pl.lit(drop_id, pl.String),
        )
    )
    return accepted, rejected.cast(REJECTED_SCHEMA)


def ragged_frame(ragged: list[tuple[int, str, str, str]], drop_id: str) -> pl.DataFrame:
    """Rows the reader could not split into the header's columns, as rejected rows."""
    lines, reasons, details, records = zip(*ragged, strict=True) if ragged else ([], [], [], [])
    return pl.DataFrame(
        {
            "source_line": list(lines),
            "reason": list(reasons),
            "detail": [d[:_DETAIL_CHARS] for d in details],
            "record": list(records),
            "drop_id": [drop_id] * len(lines),
        },
        schema=REJECTED_SCHEMA,
    )
