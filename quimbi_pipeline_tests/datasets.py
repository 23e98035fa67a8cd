"""Test data shared by several test modules: the real CDNOW log and generated shops in a lake."""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

from quimbi_pipeline.core.ingest import ingest_file
from quimbi_pipeline.core.schema import ORDER_LINE_SCHEMA, TICKET_SCHEMA
from quimbi_pipeline.core.union import union_drops


def cdnow_master() -> Path:
    """The real CDNOW log shipped by ``lifetimes``; fails (never skips) when it is missing.

    ``lifetimes`` is a dev dependency, so its absence is a broken environment, not a reason to
    test less.
    """
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "the lifetimes package is not installed: it ships the real CDNOW log these tests "
            "read (a dev dependency: pip install -e '.[dev]')",
            pytrace=False,
        )
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_master.txt"
    if not path.is_file():
        pytest.fail(f"lifetimes is installed but {path} is missing", pytrace=False)
    return path


@dataclass(frozen=True)
class Lake:
    """Order lines and tickets of some ingested files, as the ``orders``/``tickets`` assets
    write them."""

    orders: Path
    tickets: Path
    order_drops: int
    ticket_drops: int


def ingest_to_lake(files: list[Path], raw_dir: Path, orders: Path, tickets: Path) -> Lake:
    """Ingests every file with ``ingest_file`` (layout sniffed) and unions them by kind.

    Args:
        files: CSV exports or logs, in drop order.
        raw_dir: Where each file's ingest output goes (one folder per file).
        orders: Parquet file to write the union of the order drops to.
        tickets: Parquet file to write the union of the ticket drops to (empty when none).
    """
    accepted: dict[str, list[Path]] = {"orders": [], "tickets": []}
    for number, path in enumerate(files):
        out = raw_dir / f"{number:04d}_{path.stem}"
        report = ingest_file(path, f"drop-{number:04d}", out)
        accepted[report.kind].append(out / "accepted")
    union_drops(accepted["orders"], ORDER_LINE_SCHEMA, orders)
    union_drops(accepted["tickets"], TICKET_SCHEMA, tickets)
    return Lake(orders, tickets, len(accepted["orders"]), len(accepted["tickets"]))
