"""Customer features and the stratified sample in the lake, readable by every later stage."""

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import polars as pl

from quimbi_pipeline.core.features import AxisApplicability, CustomerFeatures
from quimbi_pipeline.home import QuimbiHome


def features_dir(home: QuimbiHome) -> Path:
    return home.asset_dir("customer_features")


def save_features(home: QuimbiHome, features: CustomerFeatures) -> Path:
    """Writes the feature table, its as-of date and axis applicability, each file atomically."""
    folder = features_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "features.parquet"
    tmp = folder / ".features.parquet.tmp"
    features.frame.write_parquet(tmp)
    tmp.replace(table)
    info = {
        "as_of": features.as_of.isoformat(),
        "applicability": {k: asdict(v) for k, v in features.applicability.items()},
    }
    tmp_info = folder / ".info.json.tmp"
    tmp_info.write_text(json.dumps(info, indent=2, sort_keys=True))
    tmp_info.replace(folder / "info.json")
    return table


def load_features(home: QuimbiHome) -> CustomerFeatures:
    """The last materialized customer_features."""
    folder = features_dir(home)
    if not (folder / "info.json").exists():
        raise FileNotFoundError(
            f"{folder}: customer_features has not been materialized yet; run the pipeline first"
        )
    info = json.loads((folder / "info.json").read_text())
    return CustomerFeatures(
        frame=pl.read_parquet(folder / "features.parquet"),
        as_of=datetime.fromisoformat(info["as_of"]),
        applicability={k: AxisApplicability(**v) for k, v in info["applicability"].items()},
    )


def sample_path(home: QuimbiHome) -> Path:
    return home.asset_dir("stratified_sample") / "sample.parquet"


def orders_path(home: QuimbiHome) -> Path:
    return home.asset_dir("orders") / "orders.parquet"


def tickets_path(home: QuimbiHome) -> Path:
    return home.asset_dir("tickets") / "tickets.parquet"
