"""Versioned segment models in the `segment_models` table, loadable without Dagster."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from quimbi_pipeline.core.segmentation import AxisModel
from quimbi_pipeline.db.sql_files import statement

# Serialises model writers: two fits of the same axis must not both become version N+1.
MODELS_LOCK = 0x5E6_0001


@dataclass(frozen=True)
class StoredModel:
    axis: str
    version: int
    status: str
    reason: str | None
    model: AxisModel | None
    data_as_of: datetime | None


def save_axis_model(
    conn: psycopg.Connection,
    axis: str,
    *,
    model: AxisModel | None,
    reason: str | None,
    sample_size: int,
    data_as_of: datetime,
) -> int:
    """Stores a fit (or a not-applicable verdict) as the axis's current version; returns it.

    Identical content keeps the current version, so re-running a fit on the same data leaves
    the table unchanged; anything else retires the current row and inserts version + 1, all
    in one transaction.
    """
    payload = model.to_dict() if model is not None else None
    status = "active" if model is not None else "not_applicable"
    content = json.dumps(
        {"status": status, "reason": reason, "model": payload, "as_of": str(data_as_of)},
        sort_keys=True,
    )
    content_hash = hashlib.sha256(content.encode()).hexdigest()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MODELS_LOCK,))
        current = conn.execute(
            "SELECT version, content_hash FROM segment_models "
            "WHERE axis = %s AND status <> 'retired'",
            (axis,),
        ).fetchone()
        if current is not None and current[1] == content_hash:
            return current[0]
        conn.execute(statement("db/segment_models.sql", "retire"), {"axis": axis})
        row = conn.execute(
            statement("db/segment_models.sql", "insert"),
            {
                "axis": axis,
                "status": status,
                "reason": reason,
                "k": len(model.segment_names) if model else None,
                "segment_names": Jsonb(model.segment_names) if model else None,
                "segment_sizes": Jsonb(model.segment_sizes) if model else None,
                "centres_scaled": Jsonb(payload["centres_scaled"]) if payload else None,
                "centres_original": Jsonb(payload["centres_original"]) if payload else None,
                "scaler": Jsonb(
                    {"center": payload["scaler_center"], "scale": payload["scaler_scale"]}
                )
                if payload
                else None,
                "scores": Jsonb(
                    {
                        "k": model.k,
                        "silhouette": model.silhouette,
                        "balance": model.balance,
                        "score": model.score,
                        "k_scores": payload["k_scores"],
                    }
                )
                if payload
                else None,
                "model": Jsonb(payload) if payload else None,
                "content_hash": content_hash,
                "sample_size": sample_size,
                "data_as_of": data_as_of,
            },
        ).fetchone()
    return row[0]


def load_current_models(conn: psycopg.Connection) -> dict[str, StoredModel]:
    """The current row of every axis: the active model or the not-applicable verdict."""
    rows = conn.execute(statement("db/segment_models.sql", "current")).fetchall()
    conn.commit()
    return {
        axis: StoredModel(
            axis=axis,
            version=version,
            status=status,
            reason=reason,
            model=AxisModel.from_dict(model) if model is not None else None,
            data_as_of=as_of,
        )
        for axis, version, status, reason, model, _hash, _k, as_of in rows
    }


def model_set_version(models: dict[str, StoredModel]) -> str:
    """One readable id for the set of current models, e.g. ``purchase_frequency:3,...``-hash."""
    pairs = ",".join(f"{axis}:{m.version}" for axis, m in sorted(models.items()))
    return "ms_" + hashlib.sha1(pairs.encode()).hexdigest()[:12]
