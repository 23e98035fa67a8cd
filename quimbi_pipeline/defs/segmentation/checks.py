"""Sampling fidelity: does a sample-fitted model segment customers as the population would?"""

from dataclasses import replace

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from quimbi_pipeline.core.axes import AXES, Axis
from quimbi_pipeline.core.axis_models import axis_matrix, fit_axis_on_frame, map_axes
from quimbi_pipeline.core.segmentation import (
    AxisModel,
    AxisNotFittable,
    SegmentationConfig,
    assign_to_centroids,
    match_segments,
)
from quimbi_pipeline.db.models_store import load_current_models
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.segmentation.models import model_key
from quimbi_pipeline.feature_store import load_features, sample_path

SAMPLING_FIDELITY = "sampling_fidelity"


class FidelityConfig(dg.Config):
    held_out: int = Field(default=5000, description="Customers outside the sample to compare on.")
    population_cap: int = Field(
        default=50_000,
        description="The population model is fitted on all customers, or on this many drawn "
        "uniformly at random when there are more (k-means cost grows with n).",
    )
    min_agreement: float = 0.95
    seed: int = 0


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            SAMPLING_FIDELITY,
            asset=model_key(axis.name),
            description="Agreement, after matching segments, between the sample-fitted model "
            "and a model fitted on the population, on customers outside the sample.",
        )
        for axis in AXES
    ],
    can_subset=True,
)
def sampling_fidelity(
    context: dg.AssetCheckExecutionContext,
    config: FidelityConfig,
    lake: LakeResource,
    postgres: PostgresResource,
):
    """Compares each active axis model with a population fit on held-out customers."""
    home = lake.paths()
    frame = load_features(home).frame.sort("customer_id")
    sample_ids = pl.read_parquet(sample_path(home)).select("customer_id")
    outside = frame.join(sample_ids, on="customer_id", how="anti")
    held_out = outside.sample(min(config.held_out, outside.height), seed=config.seed)
    population = (
        frame.sample(config.population_cap, seed=config.seed + 1)
        if frame.height > config.population_cap
        else frame
    )
    with postgres.connection() as conn:
        stored = load_current_models(conn)
    selected = [
        axis
        for axis in AXES
        if dg.AssetCheckKey(model_key(axis.name), SAMPLING_FIDELITY)
        in context.selected_asset_check_keys
    ]

    def population_fit(axis: Axis) -> AxisModel | AxisNotFittable | None:
        """The population model of an axis at its stored model's k, or why there is none."""
        current = stored.get(axis.name)
        if current is None or current.model is None or held_out.height == 0:
            return None
        # Same search, k fixed to the sample model's k: the question is where the centres
        # land, not whether another k would score better on more data.
        model = current.model
        population_config = replace(
            SegmentationConfig(algorithm=model.algorithm), k_min=model.k, k_max=model.k
        )
        try:
            return fit_axis_on_frame(axis, population, config=population_config, seed=config.seed)
        except AxisNotFittable as problem:
            return problem

    # Two axes are fitted at a time (map_axes); results come back in axis order.
    for axis, population_model in zip(selected, map_axes(population_fit, selected), strict=True):
        check_key = dg.AssetCheckKey(model_key(axis.name), SAMPLING_FIDELITY)
        current = stored.get(axis.name)
        if population_model is None:
            why = current.reason if current is not None else "no model stored yet"
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=SAMPLING_FIDELITY,
                passed=True,
                metadata={"not_applicable": why or "no customers outside the sample"},
            )
            continue
        if isinstance(population_model, AxisNotFittable):
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=SAMPLING_FIDELITY,
                passed=False,
                metadata={"population_fit_failed": population_model.reason},
            )
            continue
        model = current.model
        matrix = axis_matrix(held_out, axis)
        from_sample = assign_to_centroids(model, matrix).dominant
        from_population = assign_to_centroids(population_model, matrix).dominant
        agreement = float(match_segments(from_sample, from_population))
        yield dg.AssetCheckResult(
            asset_key=check_key.asset_key,
            check_name=SAMPLING_FIDELITY,
            passed=agreement >= config.min_agreement,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "agreement": round(agreement, 4),
                "held_out_customers": held_out.height,
                "population_fit_customers": population.height,
                "sample_segments": len(model.segment_names),
                "population_segments": len(population_model.segment_names),
                "threshold": config.min_agreement,
                "distinct_dominant_sample": int(np.unique(from_sample).size),
            },
        )
