"""Union of ingested drops into one table, without the lines that overlapping exports repeat."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

# Where a line came from is not part of what it says: the same order line exported in two
# overlapping drops differs only in these columns.
PROVENANCE_COLUMNS = ("source_line", "drop_id")


@dataclass(frozen=True)
class UnionReport:
    drops: int
    rows_in: int
    rows_out: int

    @property
    def duplicates_removed(self) -> int:
        return self.rows_in - self.rows_out


def union_drops(
    accepted_dirs: list[Path], schema: dict[str, pl.DataType], out_path: Path
) -> UnionReport:
    """Writes the union of the drops' accepted parquet files to ``out_path``, first copy kept.

    Drops are taken in the order given (registration order), so when two exports overlap the
    line is attributed to the earlier drop. The write goes to a temporary file that replaces
    ``out_path`` only when complete.
    """
    files = [f for d in accepted_dirs for f in sorted(d.glob("*.parquet"))]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    if not files:
        pl.DataFrame(schema=schema).write_parquet(tmp)
        tmp.replace(out_path)
        return UnionReport(drops=0, rows_in=0, rows_out=0)
    rows_in = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    content = [c for c in schema if c not in PROVENANCE_COLUMNS]
    (
        pl.scan_parquet(files, schema=schema)
        .unique(subset=content, keep="first", maintain_order=True)
        .sink_parquet(tmp)
    )
    rows_out = pq.ParquetFile(tmp).metadata.num_rows
    tmp.replace(out_path)
    return UnionReport(drops=len(accepted_dirs), rows_in=rows_in, rows_out=rows_out)
