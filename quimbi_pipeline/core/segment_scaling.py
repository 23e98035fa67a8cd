"""Per-axis feature transform and robust scaling, shared by fitting and assignment.

Counts and money are heavy-tailed: they go through log1p (after clipping at 0). Every column is
then centred on its median and divided by IQR / 1.349 (sigma for normal data), falling back to
the standard deviation when the IQR is 0 (mostly-zero columns) and to 1 for constant columns,
so that no dollar column dominates the distances and a constant column adds nothing.
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


def fit_robust_scaler(T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust centre and scale of transformed features.

    centre = median; scale = IQR / 1.349 (sigma for normal data), else the standard deviation
    when the IQR is 0 (mostly-zero columns), else 1. A constant column thus becomes all 0s and
    adds nothing to any distance.

    Returns:
        (center, scale, constant) where ``constant`` flags the constant columns.
    """
    center = np.median(T, axis=0)
    q75, q25 = np.percentile(T, [75, 25], axis=0)
    scale = (q75 - q25) / _IQR_TO_SIGMA
    spread = np.ptp(T, axis=0)
    constant = spread <= 1e-12 * np.maximum(1.0, np.abs(center))
    scale = np.maximum(scale, T.std(axis=0))
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
