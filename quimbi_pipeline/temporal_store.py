"""Snapshots and drift reports in the lake: the full history that drift is computed from.

A snapshot is one parquet file per type and date in the wide shape of ``Snapshot.wide``. The
memberships, rounded to ``DECIMALS`` when assigned, are stored as integers in units of
10**-DECIMALS (the scale is in the file's metadata) and read back as the very same floats:
four times smaller than float64, and quicker to write for a backfill of many weeks.
"""

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from quimbi_pipeline.core.assignment import DECIMALS
from quimbi_pipeline.core.drift import SEVERITIES, snapshot_axes
from quimbi_pipeline.core.snapshots import Snapshot
from quimbi_pipeline.home import QuimbiHome

_SCALE_KEY = "quimbi.membership_scale"
_VERSIONS_KEY = "quimbi.model_versions"
_VERSION_KEY = "quimbi.model_version"


def snapshot_path(home: QuimbiHome, snapshot_type: str, day: date) -> Path:
    return home.asset_dir("temporal_snapshots") / snapshot_type / f"{day.isoformat()}.parquet"


def write_snapshot(
    home: QuimbiHome,
    snapshot_type: str,
    snapshot: Snapshot,
    versions: dict[str, int],
    model_version: str | None = None,
) -> Path:
    """Writes one snapshot (replacing the date's file whole) with the versions of its models:
    per axis (``read_model_versions``) and of the whole set (``read_model_version``)."""
    scale = 10**DECIMALS
    dtype = np.uint16 if scale <= np.iinfo(np.uint16).max else np.uint32
    wide = snapshot.wide()
    encoded = wide.with_columns(
        pl.Series(axis, np.rint(wide.get_column(axis).to_numpy() * scale).astype(dtype))
        for axis in snapshot_axes(wide)
    )
    path = snapshot_path(home, snapshot_type, snapshot.snapshot_date)
    metadata = {
        _SCALE_KEY: str(scale),
        _VERSIONS_KEY: json.dumps(versions, sort_keys=True),
        _VERSION_KEY: model_version or "",
    }
    _write_atomically(encoded, path, metadata)
    return path


def read_model_versions(home: QuimbiHome, snapshot_type: str, day: date) -> dict[str, int] | None:
    """The model version of each axis of a stored snapshot, or None when there is none."""
    path = snapshot_path(home, snapshot_type, day)
    if not path.exists():
        return None
    return json.loads(pl.read_parquet_metadata(path).get(_VERSIONS_KEY, "{}"))


def read_snapshot(home: QuimbiHome, snapshot_type: str, day: date) -> pl.DataFrame | None:
    """The wide snapshot of a date with float memberships, or None when there is none."""
    path = snapshot_path(home, snapshot_type, day)
    if not path.exists():
        return None
    scale = float(pl.read_parquet_metadata(path)[_SCALE_KEY])
    stored = pl.read_parquet(path)
    return stored.with_columns(
        pl.Series(axis, stored.get_column(axis).to_numpy().astype(np.float64) / scale)
        for axis in snapshot_axes(stored)
    )


def read_model_version(home: QuimbiHome, snapshot_type: str, day: date) -> str | None:
    """The model-set version of a stored snapshot (``model_set_version``), or None."""
    path = snapshot_path(home, snapshot_type, day)
    if not path.exists():
        return None
    return pl.read_parquet_metadata(path).get(_VERSION_KEY) or None


def drift_path(home: QuimbiHome, day: date) -> Path:
    return home.asset_dir("drift_reports") / f"{day.isoformat()}.parquet"


def write_drift(home: QuimbiHome, day: date, report: pl.DataFrame) -> Path:
    """Writes one week's drift report (per customer; see ``defs.temporal.drift``)."""
    path = drift_path(home, day)
    _write_atomically(report, path, {})
    return path


def read_drift(home: QuimbiHome, day: date) -> pl.DataFrame | None:
    path = drift_path(home, day)
    return pl.read_parquet(path) if path.exists() else None


def latest_drift(home: QuimbiHome) -> dict[str, object]:
    """Customer severity counts and anomalies of the newest drift report in the lake."""
    reports = sorted(home.asset_dir("drift_reports").glob("*.parquet"))
    if not reports:
        return {}
    by_customer = pl.read_parquet(reports[-1], columns=["severity", "anomaly"])
    counts = dict(by_customer.group_by("severity").len().iter_rows())
    return {
        "week_ending": reports[-1].stem,
        "severity_counts": {s: int(counts.get(s, 0)) for s in SEVERITIES},
        "anomalies": int(by_customer["anomaly"].sum()),
        "customers": by_customer.height,
    }


def _write_atomically(frame: pl.DataFrame, path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # lz4: a backfill writes a file a week, and zstd took twice as long for a file 40% smaller.
    frame.write_parquet(tmp, compression="lz4", metadata=metadata or None)
    tmp.replace(path)
