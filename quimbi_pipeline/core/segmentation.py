"""The per-axis segmentation model: fit on a customer sample, assign the whole population.

One axis = one small feature matrix. Fitting transforms (log1p for counts and money) and
robust-scales the features, so that no dollar column dominates the distances, chooses k by
silhouette and segment balance and refines the centres with fuzzy c-means
(``segment_search``), splits segments that are still broad (``segment_tree``) and names every
segment in business words (``segment_naming``). Assignment gives every customer fuzzy
memberships to the leaf segments with the FCM formula, in the same scaled space.

A fit can weight its rows: the stratified sample's design weights (``core.sampling``) make
every step estimate the population rather than the value-skewed sample (``segment_search``).

Pure numpy/scikit-learn; no Dagster, no polars.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

from quimbi_pipeline.core.segment_naming import name_segments
from quimbi_pipeline.core.segment_scaling import (
    TRANSFORMS,
    ScalingParams,
    apply_transforms,
    as_feature_matrix,
    fit_robust_scaler,
    inverse_transforms,
    scale_rows,
    transform_and_scale,
)
from quimbi_pipeline.core.segment_search import (
    PartitionScorer,
    balance_of,
    best_partition,
    count_distinct_rows,
    fuzzy_memberships,
    refine_centres,
    search_k,
)
from quimbi_pipeline.core.segment_tree import build_segment_tree

ALGORITHMS = ("kmeans", "gmm")
MODEL_FORMAT_VERSION = 1
# Rows per block in assign_to_centroids: bounds the temporaries to a few tens of MB.
ASSIGN_CHUNK_ROWS = 65_536

__all__ = [
    "TRANSFORMS",
    "Assignment",
    "AxisModel",
    "AxisNotFittable",
    "ScalingParams",
    "SegmentationConfig",
    "apply_transforms",
    "assign_to_centroids",
    "balance_of",
    "fit_axis_model",
    "fit_robust_scaler",
    "fuzzy_memberships",
    "match_segments",
    "transform_and_scale",
]


@dataclass(frozen=True)
class SegmentationConfig:
    """Knobs of one axis fit; the defaults are the production settings."""

    k_min: int = 2
    k_max: int = 6
    silhouette_weight: float = 0.4
    balance_weight: float = 0.6
    algorithm: str = "kmeans"
    fuzziness: float = 2.0
    fcm_error: float = 0.005
    fcm_maxiter: int = 150
    subdivide: bool = True
    subdivide_max_sq_distance: float = 2.0
    subdivide_max_share: float = 0.60
    subdivide_min_members: int = 100
    subdivide_max_depth: int = 3
    min_customers: int = 30

    def __post_init__(self) -> None:
        if not 2 <= self.k_min <= self.k_max <= 10:
            raise ValueError(f"need 2 <= k_min <= k_max <= 10, got {self.k_min}..{self.k_max}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.fuzziness <= 1.0:
            raise ValueError(f"fuzziness must be > 1, got {self.fuzziness}")
        if min(self.silhouette_weight, self.balance_weight) < 0 or (
            self.silhouette_weight + self.balance_weight <= 0
        ):
            raise ValueError("score weights must be >= 0 and not both 0")
        if self.min_customers < 2 or self.subdivide_max_depth < 0:
            raise ValueError("min_customers must be >= 2 and subdivide_max_depth >= 0")


class AxisNotFittable(Exception):
    """The axis cannot be segmented on this data; ``reason`` says why, in plain words."""

    def __init__(self, reason: str, *, axis: str | None = None):
        super().__init__(f"{axis}: {reason}" if axis else reason)
        self.reason = reason
        self.axis = axis


@dataclass(eq=False)
class AxisModel:
    """A fitted axis: scaling, leaf segment centres and names, and how k was chosen.

    ``silhouette``, ``balance`` and ``score`` describe the final flat leaf partition of the
    fitting sample (dominant-segment labels); ``k_scores`` the top-level k search.
    ``centres_original`` maps the scaled centres back through the inverse scaling and the
    inverse transform (expm1 for log1p columns), i.e. a typical member in raw units.
    """

    axis: str
    feature_names: list[str]
    transforms: list[str]
    scaler_center: np.ndarray
    scaler_scale: np.ndarray
    centres_scaled: np.ndarray
    centres_original: np.ndarray
    segment_names: list[str]
    segment_parents: list[str | None]
    segment_sizes: list[int]
    k: int
    silhouette: float
    balance: float
    score: float
    k_scores: list[dict] = field(default_factory=list)
    fuzziness: float = 2.0
    algorithm: str = "kmeans"
    sample_size: int = 0
    seed: int = 0

    @property
    def k_final(self) -> int:
        """Number of leaf segments (>= ``k`` when segments were subdivided)."""
        return len(self.segment_names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AxisModel) and self.to_dict() == other.to_dict()

    __hash__ = None  # mutable, compared by value

    def to_dict(self) -> dict:
        """JSON-able form (lists and floats only), e.g. for a JSONB column."""
        return {
            "format_version": MODEL_FORMAT_VERSION,
            "axis": self.axis,
            "feature_names": list(self.feature_names),
            "transforms": list(self.transforms),
            "scaler_center": _floats(self.scaler_center),
            "scaler_scale": _floats(self.scaler_scale),
            "centres_scaled": _floats(self.centres_scaled),
            "centres_original": _floats(self.centres_original),
            "segment_names": list(self.segment_names),
            "segment_parents": list(self.segment_parents),
            "segment_sizes": [int(s) for s in self.segment_sizes],
            "k": int(self.k),
            "silhouette": float(self.silhouette),
            "balance": float(self.balance),
            "score": float(self.score),
            "k_scores": [dict(entry) for entry in self.k_scores],
            "fuzziness": float(self.fuzziness),
            "algorithm": self.algorithm,
            "sample_size": int(self.sample_size),
            "seed": int(self.seed),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "AxisModel":
        """Inverse of ``to_dict``; floats survive JSON exactly, so assignments are identical."""
        version = d.get("format_version", MODEL_FORMAT_VERSION)
        if version != MODEL_FORMAT_VERSION:
            raise ValueError(f"unsupported AxisModel format_version {version}")
        n_features = len(d["feature_names"])

        def matrix(key: str) -> np.ndarray:
            return np.asarray(d[key], dtype=np.float64).reshape(-1, n_features)

        return cls(
            axis=d["axis"],
            feature_names=list(d["feature_names"]),
            transforms=list(d["transforms"]),
            scaler_center=np.asarray(d["scaler_center"], dtype=np.float64),
            scaler_scale=np.asarray(d["scaler_scale"], dtype=np.float64),
            centres_scaled=matrix("centres_scaled"),
            centres_original=matrix("centres_original"),
            segment_names=list(d["segment_names"]),
            segment_parents=list(d["segment_parents"]),
            segment_sizes=[int(s) for s in d["segment_sizes"]],
            k=int(d["k"]),
            silhouette=float(d["silhouette"]),
            balance=float(d["balance"]),
            score=float(d["score"]),
            k_scores=[dict(entry) for entry in d["k_scores"]],
            fuzziness=float(d["fuzziness"]),
            algorithm=d["algorithm"],
            sample_size=int(d["sample_size"]),
            seed=int(d["seed"]),
        )


@dataclass
class Assignment:
    """Fuzzy assignment of customers to an axis's leaf segments (rows follow the input)."""

    memberships: np.ndarray  # (n, k_final), rows sum to 1
    dominant: np.ndarray  # (n,) index of the segment with the largest membership
    strength: np.ndarray  # (n,) that membership
    distance: np.ndarray  # (n,) Euclidean distance to the dominant centre, scaled space


def _floats(a: np.ndarray) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def fit_axis_model(
    axis: str,
    X: np.ndarray,
    feature_names: list[str],
    transforms: list[str],
    vocabulary: dict[str, tuple[str, str]],
    *,
    config: SegmentationConfig = SegmentationConfig(),
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> AxisModel:
    """Fit one axis's segmentation on a customer sample.

    Args:
        axis: axis name, e.g. ``purchase_frequency``.
        X: (n_customers, n_features) raw, untransformed, finite features.
        feature_names: one per column.
        transforms: ``log1p`` or ``identity`` per column.
        vocabulary: feature -> (word when high, word when low), for segment names.
        config: search, FCM and subdivision settings.
        seed: random state of every estimator; the same data and seed give the same model.
        sample_weight: optional (n_customers,) positive weights, e.g. each sampled customer's
            tier population / tier sample size: scaling, k-means, FCM, scores and
            subdivision then describe the population the sample stands for. Segment sizes
            stay counts of sample rows.

    Raises:
        AxisNotFittable: too few customers or nothing varies.
    """
    if not (len(feature_names) == len(transforms) and len(feature_names) > 0):
        raise ValueError("need one transform per feature name and at least one feature")
    X = as_feature_matrix(X, len(feature_names))
    n = X.shape[0]
    weights = _row_weights(sample_weight, n)
    if n < config.min_customers:
        raise AxisNotFittable(f"only {n} customers (need {config.min_customers})", axis=axis)
    T = apply_transforms(X, transforms)
    center, scale, constant = fit_robust_scaler(T, weights)
    if constant.all():
        raise AxisNotFittable(f"all features constant ({', '.join(feature_names)})", axis=axis)
    Z = (T - center) / scale

    # Small matrices gain nothing from BLAS/OpenMP threads, and on a busy machine k-means'
    # OpenMP spin-waits were measured 10-100x slower than one thread.
    with threadpool_limits(limits=1):
        k_hi = count_distinct_rows(Z, at_most=config.k_max)
        k_values = list(range(min(config.k_min, k_hi), k_hi + 1))
        scorer = PartitionScorer(Z, config, seed, weights)
        candidates = search_k(Z, k_values, config, seed, scorer, weights)
        chosen = best_partition(candidates, config.algorithm)
        top_centres = refine_centres(Z, chosen, config, weights)
        nodes = build_segment_tree(Z, top_centres, config, seed, scorer, weights)
        parents = [node.parent for node in nodes]
        node_centres = [node.centre for node in nodes]
        names = name_segments(axis, feature_names, vocabulary, node_centres, parents)
        leaves = [i for i, node in enumerate(nodes) if node.is_leaf]
        centres = np.vstack([nodes[i].centre for i in leaves])
        # Quality and sizes of what assignment will actually serve: the flat leaf partition.
        labels = cdist(Z, centres, "sqeuclidean").argmin(axis=1)
        sizes, sil, bal, score = scorer.score(labels, len(leaves))

    return AxisModel(
        axis=axis,
        feature_names=list(feature_names),
        transforms=list(transforms),
        scaler_center=center,
        scaler_scale=scale,
        centres_scaled=centres,
        centres_original=inverse_transforms(centres * scale + center, transforms),
        segment_names=[names[i] for i in leaves],
        segment_parents=[
            None if nodes[i].parent is None else names[nodes[i].parent] for i in leaves
        ],
        segment_sizes=sizes,
        k=chosen.k,
        silhouette=sil,
        balance=bal,
        score=score,
        k_scores=[p.summary() for p in candidates],
        fuzziness=config.fuzziness,
        algorithm=config.algorithm,
        sample_size=n,
        seed=seed,
    )


def _row_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray | None:
    """Validated weights scaled to mean 1 (so weighted sizes read as rows), or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(f"sample_weight must be {n} finite positive numbers, got shape {w.shape}")
    return w * (n / w.sum())


def assign_to_centroids(model: AxisModel, X: np.ndarray) -> Assignment:
    """Fuzzy memberships of raw feature rows to the model's leaf segments.

    Uses the FCM membership formula on the leaf centres for both algorithms (for ``gmm`` the
    means), so every axis serves the same kind of memberships and needs only its centres;
    the dominant segment is then simply the nearest centre. Vectorised in row blocks.
    """
    X = as_feature_matrix(X, len(model.feature_names))
    n, k = X.shape[0], model.centres_scaled.shape[0]
    memberships = np.empty((n, k))
    dominant = np.empty(n, dtype=np.int64)
    strength = np.empty(n)
    distance = np.empty(n)
    for start in range(0, n, ASSIGN_CHUNK_ROWS):
        stop = min(start + ASSIGN_CHUNK_ROWS, n)
        d2 = cdist(scale_rows(model, X[start:stop]), model.centres_scaled, "sqeuclidean")
        u = fuzzy_memberships(d2, model.fuzziness, out=memberships[start:stop])
        # Memberships fall as distance grows, so the nearest centre is the dominant segment
        # (ties go to the lower index either way).
        dom = d2.argmin(axis=1)
        rows = np.arange(stop - start)
        dominant[start:stop] = dom
        strength[start:stop] = u[rows, dom]
        distance[start:stop] = np.sqrt(d2[rows, dom])
    return Assignment(memberships, dominant, strength, distance)


def match_segments(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Share of rows on which two labelings agree after the best one-to-one label matching.

    Labels may be any hashable values and the two sides may have different numbers of
    segments (unmatched segments count as disagreement). Used for the sampling-fidelity
    check: sample-fit vs full-fit assignments, or a fit vs planted labels.
    """
    a, b = np.asarray(labels_a).ravel(), np.asarray(labels_b).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty labelings of equal length, got {a.size}, {b.size}")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    n_b = ib.max() + 1
    table = np.bincount(ia * n_b + ib, minlength=(ia.max() + 1) * n_b).reshape(-1, n_b)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / a.size)
