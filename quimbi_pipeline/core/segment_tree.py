"""Hierarchical subdivision: split the segments of one axis that are still broad.

A top-level segment can hide two groups, or hold most customers. Such a "broad" segment is
split with the same k search restricted to k in 2..3 on its members. The split is kept only
if the children are clearly separated and substantial: silhouette above
``SPLIT_MIN_SILHOUETTE`` (noise cut in two scores about 0.1-0.2 in 4+ dimensions) and every
child holding ``SPLIT_MIN_CHILD_SHARE`` of the parent's members. A segment that is broad only
because it is diffuse (not because it holds most customers) must in addition improve the
whole axis: the flat leaf partition of the sample (each row to its nearest leaf, as assignment
serves it) must score strictly better, on the silhouette + balance score that chose k, with
the split than without. That stops splits that merely carve small segments out of heavy
tails. A mega-segment is split whenever the split is real, since a segment holding most
customers is the defect the balance term exists to prevent, and the balance of 1 - std/mean
can rate a 36/64 pair above four segments where one is small.

Children replace their parent in the flat leaf list and may be split again, down to
``subdivide_max_depth`` levels below the top.

With row weights (a stratified sample's design weights) shares, mean squared distances, the
child searches and the scores are all weighted, so "most customers" means most of the
population; ``subdivide_min_members`` still counts sample rows, the evidence a split rests on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.distance import cdist

from quimbi_pipeline.core.segment_search import (
    PartitionScorer,
    best_partition,
    count_distinct_rows,
    refine_centres,
    search_k,
)

if TYPE_CHECKING:
    from quimbi_pipeline.core.segmentation import SegmentationConfig

SPLIT_MIN_SILHOUETTE = 0.25
SPLIT_MIN_CHILD_SHARE = 0.05


@dataclass
class SegmentNode:
    """A segment of the hierarchy; ``parent`` indexes the node list, ``None`` at the top."""

    centre: np.ndarray
    parent: int | None
    depth: int
    is_leaf: bool = True


def broadness(
    members: np.ndarray,
    centre: np.ndarray,
    n_total: float,
    config: SegmentationConfig,
    weights: np.ndarray | None = None,
) -> str | None:
    """Why a segment with these members should be considered for a split, or None.

    ``"mega"`` when it holds more than ``subdivide_max_share`` of all rows (of their total
    weight ``n_total`` when ``weights`` weigh the members), ``"diffuse"`` when its mean
    squared distance to its centre exceeds ``subdivide_max_sq_distance``. Either way it needs
    ``subdivide_min_members`` members: a split of a few dozen customers describes noise.
    """
    n = members.shape[0]
    if n < max(config.subdivide_min_members, 4):
        return None
    mass = n if weights is None else float(weights.sum())
    if mass / n_total > config.subdivide_max_share:
        return "mega"
    msd = float(np.average(((members - centre) ** 2).sum(axis=1), weights=weights))
    return "diffuse" if msd > config.subdivide_max_sq_distance else None


def propose_split(
    members: np.ndarray,
    config: SegmentationConfig,
    seed: int,
    weights: np.ndarray | None = None,
) -> np.ndarray | None:
    """Children centres for a broad segment, or None when no k in 2..3 passes the local gates.

    Among the candidates that pass, the best by the axis's own criterion (score for k-means,
    BIC for the Gaussian mixture) is refined like the top level (FCM for k-means).
    """
    n = members.shape[0]
    k_values = list(range(2, count_distinct_rows(members, at_most=3) + 1))
    eligible = [
        p
        for p in search_k(members, k_values, config, seed, weights=weights)
        if p.silhouette > SPLIT_MIN_SILHOUETTE and min(p.sizes) >= SPLIT_MIN_CHILD_SHARE * n
    ]
    if not eligible:
        return None
    best = best_partition(eligible, config.algorithm)
    return refine_centres(members, best, config, weights)


def order_centres(centres: np.ndarray) -> np.ndarray:
    """Deterministic sibling order: lexicographic by centre coordinates, first feature first.

    Rounded so that float noise between re-fits cannot swap two segments.
    """
    keys = np.round(np.asarray(centres, dtype=np.float64), 6)
    return np.lexsort(keys.T[::-1])


def _nearest(z: np.ndarray, centres: list[np.ndarray]) -> np.ndarray:
    return cdist(z, np.vstack(centres), "sqeuclidean").argmin(axis=1)


def build_segment_tree(
    z: np.ndarray,
    top_centres: np.ndarray,
    config: SegmentationConfig,
    seed: int,
    scorer: PartitionScorer,
    weights: np.ndarray | None = None,
) -> list[SegmentNode]:
    """Subdivide broad segments; return every node in depth-first order.

    Args:
        z: (n, f) scaled sample.
        top_centres: (k, f) top-level centres.
        config: subdivision settings and score weights.
        seed: random state for the child searches.
        scorer: the ``PartitionScorer`` of ``z`` (with the same weights) for the global gate.
        weights: optional (n,) row weights.

    Returns:
        Nodes with parents before children and siblings in ``order_centres`` order; the leaves
        in this order are the model's segments.
    """
    nodes = [SegmentNode(np.asarray(c, dtype=np.float64), None, 0) for c in top_centres]
    leaves = list(range(len(nodes)))
    labels = _nearest(z, [nodes[i].centre for i in leaves])
    current = scorer.score(labels, len(leaves))[3]
    total = float(z.shape[0]) if weights is None else float(weights.sum())
    queue = list(leaves) if config.subdivide else []
    while queue:
        node_id = queue.pop(0)
        node, pos = nodes[node_id], leaves.index(node_id)
        inside = labels == pos
        members = z[inside]
        member_weights = None if weights is None else weights[inside]
        reason = broadness(members, node.centre, total, config, member_weights)
        if node.depth >= config.subdivide_max_depth or reason is None:
            continue
        children = propose_split(members, config, seed, member_weights)
        if children is None:
            continue
        child_ids = list(range(len(nodes), len(nodes) + len(children)))
        trial = leaves[:pos] + child_ids + leaves[pos + 1 :]
        centres = {i: nodes[i].centre for i in leaves} | dict(zip(child_ids, children, strict=True))
        trial_labels = _nearest(z, [centres[i] for i in trial])
        trial_score = scorer.score(trial_labels, len(trial))[3]
        if reason == "diffuse" and trial_score <= current:
            continue
        nodes[node_id].is_leaf = False
        nodes.extend(SegmentNode(c, node_id, node.depth + 1) for c in children)
        leaves, labels, current = trial, trial_labels, trial_score
        queue.extend(child_ids)
    return _depth_first(nodes)


def _depth_first(nodes: list[SegmentNode]) -> list[SegmentNode]:
    """Reorder nodes depth-first with sorted siblings, remapping parent indices."""
    children: dict[int | None, list[int]] = {}
    for i, node in enumerate(nodes):
        children.setdefault(node.parent, []).append(i)
    out: list[SegmentNode] = []

    def visit(parent_old: int | None, parent_new: int | None) -> None:
        ids = children.get(parent_old, [])
        if not ids:
            return
        for j in np.asarray(ids)[order_centres(np.vstack([nodes[i].centre for i in ids]))]:
            node = nodes[int(j)]
            out.append(SegmentNode(node.centre, parent_new, node.depth, node.is_leaf))
            visit(int(j), len(out) - 1)

    visit(None, None)
    return out
