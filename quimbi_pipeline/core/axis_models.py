"""Fitting one axis of the registry on a feature frame: the glue between axes and models."""

import numpy as np
import polars as pl

from quimbi_pipeline.core.axes import Axis
from quimbi_pipeline.core.segmentation import AxisModel, SegmentationConfig, fit_axis_model


def axis_matrix(frame: pl.DataFrame, axis: Axis) -> np.ndarray:
    """The raw (untransformed) feature matrix of one axis, in the axis's feature order."""
    return frame.select(axis.columns()).to_numpy().astype(np.float64, copy=False)


def fit_axis_on_frame(
    axis: Axis,
    frame: pl.DataFrame,
    *,
    config: SegmentationConfig | None = None,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> AxisModel:
    """Fits ``axis`` on the customers of ``frame`` with its features' transforms and words."""
    return fit_axis_model(
        axis.name,
        axis_matrix(frame, axis),
        [f.name for f in axis.features],
        [f.transform for f in axis.features],
        {f.name: (f.high, f.low) for f in axis.features},
        config=config if config is not None else SegmentationConfig(),
        seed=seed,
        sample_weight=sample_weight,
    )
