"""Snapshots and drift reports in the lake: the full history that drift is computed from."""

from datetime import date
from pathlib import Path

import polars as pl

from quimbi_pipeline.core.snapshots import Snapshot
from quimbi_pipeline.home import QuimbiHome


def snapshot_dir(home: QuimbiHome, snapshot_type: str, day: date) -> Path:
    return home.asset_dir("temporal_snapshots") / snapshot_type / day.isoformat()


def write_snapshot(home: QuimbiHome, snapshot_type: str, snapshot: Snapshot) -> Path:
    """Writes one snapshot's long and per-customer tables, swapping the folder in whole."""
    folder = snapshot_dir(home, snapshot_type, snapshot.snapshot_date)
    tmp = folder.with_name(f".{folder.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    snapshot.long.select("customer_id", "axis", "dominant_segment", "memberships").write_parquet(
        tmp / "long.parquet"
    )
    snapshot.customers.write_parquet(tmp / "customers.parquet")
    if folder.exists():
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
    tmp.rename(folder)
    return folder


def read_snapshot_long(home: QuimbiHome, snapshot_type: str, day: date) -> pl.DataFrame | None:
    path = snapshot_dir(home, snapshot_type, day) / "long.parquet"
    return pl.read_parquet(path) if path.exists() else None


def drift_path(home: QuimbiHome, day: date) -> Path:
    return home.asset_dir("drift_reports") / f"{day.isoformat()}.parquet"


def latest_drift(home: QuimbiHome) -> dict[str, object]:
    """Customer severity counts and anomalies of the newest drift report in the lake."""
    from quimbi_pipeline.core.drift import SEVERITIES, customer_drift

    reports = sorted(home.asset_dir("drift_reports").glob("*.parquet"))
    if not reports:
        return {}
    by_customer = customer_drift(pl.read_parquet(reports[-1]))
    counts = dict(by_customer.group_by("severity").len().iter_rows())
    return {
        "week_ending": reports[-1].stem,
        "severity_counts": {s: int(counts.get(s, 0)) for s in SEVERITIES},
        "anomalies": int(by_customer["anomaly"].sum()),
        "customers": by_customer.height,
    }
