"""Per-axis feature transform and robust scaling, shared by fitting and assignment.

Counts and money are heavy-tailed: they go through log1p (after clipping at 0). Every column is
then centred on its median and divided by ``max(IQR / 1.349, standard deviation)`` (IQR / 1.349
is sigma for normal data), and by 1 when constant, so that no dollar column dominates the
distances and a constant column adds nothing.

The standard deviation is a floor, not only a fallback for a zero IQR: many behavioral columns
pile up on one value (0 returns, 0 trend with fewer than 3 orders) with a small but non-zero
IQR, and IQR scaling alone stretched them far beyond the others. On a generated 3,000-customer
shop the value trend came out with a scaled standard deviation of 32 (the other value columns
about 0.8), refund rate 6, recency momentum 8.5, and k-means split those axes on these single
columns. With the floor every scaled column has a standard deviation of at most 1 while
bimodal columns, where IQR / 1.349 exceeds the standard deviation, keep their robust scale.
"""

from typing import Protocol

import numpy as np

TRANSFORMS = ("log1p", "identity")
# IQR of a normal distribution in standard deviations: scale = IQR / 1.349 estimates sigma.
_IQR_TO_SIGMA = 1.349


class ScalingParams(Protocol):
    """Anything carrying a fitted transform + scaling, e.g. an ``AxisModel``."""

    transforms: list[str]
    scaler_center: np.ndarray
    scaler_scale: np.ndarray


def as_feature_matrix(X: np.ndarray, n_features: int) -> np.ndarray:
    """``X`` as a float64 (n, n_features) matrix; ValueError on a wrong shape or NaN/inf."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"expected a 2-D array with {n_features} columns, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("features must be finite (no NaN or inf)")
    return X


def apply_transforms(X: np.ndarray, transforms: list[str]) -> np.ndarray:
    """Per-column transform: ``log1p`` (after clipping at 0: counts and money) or ``identity``.

    Returns a new float64 array.
    """
    unknown = set(transforms) - set(TRANSFORMS)
    if unknown:
        raise ValueError(f"unknown transforms {sorted(unknown)}; use {TRANSFORMS}")
    out = np.array(X, dtype=np.float64, copy=True)
    log_cols = [j for j, t in enumerate(transforms) if t == "log1p"]
    if len(log_cols) == out.shape[1]:  # the common case, done in place without gathers
        np.log1p(np.maximum(out, 0.0, out=out), out=out)
    elif log_cols:
        out[:, log_cols] = np.log1p(np.maximum(out[:, log_cols], 0.0))
    return out


def inverse_transforms(T: np.ndarray, transforms: list[str]) -> np.ndarray:
    """Back from transformed to raw units (expm1 on log1p columns)."""
    out = np.asarray(T, dtype=np.float64).copy()
    log_cols = [j for j, t in enumerate(transforms) if t == "log1p"]
    if log_cols:
        out[:, log_cols] = np.expm1(out[:, log_cols])
    return out


def weighted_quantiles(T: np.ndarray, q: list[float], weights: np.ndarray) -> np.ndarray:
    """Per-column quantiles of weighted rows, (len(q), n_features).

    The weighted analogue of numpy's default (linear) percentile, equal to it for equal
    weights: in a column sorted ascending, row i sits at position ``B_i / (W - w_last)``, where
    B_i is the weight of the rows before it, W the total and w_last the weight of the largest
    value (so positions run from 0 to 1); values in between are interpolated linearly.
    """
    order = np.argsort(T, axis=0, kind="stable")
    values = np.take_along_axis(T, order, axis=0)
    w = weights[order]
    before = np.cumsum(w, axis=0) - w
    position = before / np.maximum(before[-1], np.finfo(np.float64).tiny)
    return np.column_stack(
        [np.interp(q, position[:, j], values[:, j]) for j in range(T.shape[1])]
    ).reshape(len(q), T.shape[1])


def fit_robust_scaler(
    T: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust centre and scale of transformed features.

    centre = median; scale = max(IQR / 1.349, standard deviation), or 1 for a constant column,
    which thus becomes all 0s and adds nothing to any distance. No scaled column has a standard
    deviation above 1 (see the module docstring).

    Args:
        T: (n, f) transformed features.
        weights: optional (n,) positive row weights (a stratified sample's design weights):
            the median, quartiles and standard deviation are then those of the population the
            weighted rows stand for.

    Returns:
        (center, scale, constant) where ``constant`` flags the constant columns.
    """
    if weights is None:
        center = np.median(T, axis=0)
        q75, q25 = np.percentile(T, [75, 25], axis=0)
        std = T.std(axis=0)
    else:
        center, q75, q25 = weighted_quantiles(T, [0.5, 0.75, 0.25], weights)
        mean = np.average(T, axis=0, weights=weights)
        std = np.sqrt(np.average((T - mean) ** 2, axis=0, weights=weights))
    scale = (q75 - q25) / _IQR_TO_SIGMA
    spread = np.ptp(T, axis=0)
    constant = spread <= 1e-12 * np.maximum(1.0, np.abs(center))
    scale = np.maximum(scale, std)
    scale = np.where(constant | (scale <= 0), 1.0, scale)
    return center, scale, constant


def transform_and_scale(params: ScalingParams, X: np.ndarray) -> np.ndarray:
    """Raw features -> the model's scaled space (same transform and scaling as at fit time)."""
    return scale_rows(params, as_feature_matrix(X, len(params.transforms)))


def scale_rows(params: ScalingParams, X: np.ndarray) -> np.ndarray:
    """``transform_and_scale`` without the input checks, for already validated blocks."""
    Z = apply_transforms(X, params.transforms)
    Z -= params.scaler_center
    Z /= params.scaler_scale
    return Z
