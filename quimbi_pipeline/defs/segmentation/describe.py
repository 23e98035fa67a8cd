"""What a segment model means, as UI metadata: k, quality, balance, and each segment in words."""

import dagster as dg
import numpy as np

from quimbi_pipeline.core.segmentation import AxisModel


def model_metadata(
    model: AxisModel | None, reason: str | None, version: int, source: str
) -> dict[str, object]:
    """Metadata of one axis model; a not-applicable axis says why instead."""
    if model is None:
        return {
            "status": "not_applicable",
            "reason": reason or "",
            "input_source": source,
            "model_version": version,
        }
    sizes = np.asarray(model.segment_sizes, dtype=float)
    total = sizes.sum() or 1.0
    header = "| segment | parent | customers | share | " + " | ".join(model.feature_names) + " |"
    rule = "|" + "---|" * (4 + len(model.feature_names))
    rows = [
        f"| {name} | {parent or ''} | {int(size)} | {size / total:.1%} | "
        + " | ".join(f"{v:.3g}" for v in centre)
        + " |"
        for name, parent, size, centre in zip(
            model.segment_names, model.segment_parents, sizes, model.centres_original, strict=True
        )
    ]
    tried = ["| k | silhouette | balance | score | sizes |", "|---|---|---|---|---|"] + [
        f"| {s['k']} | {s['silhouette']:.3f} | {s['balance']:.3f} | {s['score']:.3f} "
        f"| {s.get('sizes', '')} |"
        for s in model.k_scores
    ]
    return {
        "status": "active",
        "model_version": version,
        "input_source": source,
        "algorithm": model.algorithm,
        "k": model.k,
        "segments": len(model.segment_names),
        "silhouette": float(model.silhouette),
        "balance": float(model.balance),
        "score": float(model.score),
        "largest_segment_share": float(sizes.max() / total),
        "segment_names": dg.MetadataValue.json(list(model.segment_names)),
        "segment_sizes": dg.MetadataValue.json(
            {name: int(size) for name, size in zip(model.segment_names, sizes, strict=True)}
        ),
        "segments_table": dg.MetadataValue.md(
            "Centres in original units.\n\n" + "\n".join([header, rule, *rows])
        ),
        "k_search": dg.MetadataValue.md("\n".join(tried)),
        "sample_size": model.sample_size,
    }
