"""UI metadata for ingestion runs: counts that always add up, and a line per drop."""

from collections import Counter
from pathlib import Path

import dagster as dg
import polars as pl

from quimbi_pipeline.core.ingest import IngestReport


def drops_metadata(reports: list[IngestReport], accepted_dirs: list[Path]) -> dict:
    """Aggregate counts over the drops of one run, plus a per-drop markdown table."""
    reasons: Counter[str] = Counter()
    for report in reports:
        reasons.update(report.rejected_by_reason)
    files = [f for d in accepted_dirs for f in d.glob("*.parquet")]
    if len(reports) == 1:
        customers = reports[0].customers  # counted while ingesting; no need to read it back
    elif files:
        customers = pl.scan_parquet(files).select(pl.col("customer_id").n_unique()).collect().item()
    else:
        customers = 0
    firsts = [r.first_at for r in reports if r.first_at is not None]
    lasts = [r.last_at for r in reports if r.last_at is not None]
    rows = "\n".join(
        f"| {r.drop_id} | {r.layout} | {r.rows_read} | {r.rows_accepted} | {r.rows_rejected} "
        f"| {r.customers} | {r.first_at} | {r.last_at} |"
        for r in reports
    )
    table = (
        "| drop | format | read | accepted | rejected | customers | first | last |\n"
        "|---|---|---|---|---|---|---|---|\n" + rows
    )
    return {
        "drops": len(reports),
        "format": ", ".join(sorted({r.layout for r in reports})),
        "rows_read": sum(r.rows_read for r in reports),
        "rows_accepted": sum(r.rows_accepted for r in reports),
        "rows_rejected": sum(r.rows_rejected for r in reports),
        "rejected_by_reason": dg.MetadataValue.json(dict(sorted(reasons.items()))),
        "customers": customers,
        "first": str(min(firsts)) if firsts else "",
        "last": str(max(lasts)) if lasts else "",
        "per_drop": dg.MetadataValue.md(table),
        "dagster/row_count": sum(r.rows_accepted for r in reports),
    }
