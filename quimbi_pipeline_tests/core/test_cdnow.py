"""The real CDNOW log (23,570 customers, dates, quantities and amounts only) end to end.

ingest_file -> compute_customer_features -> stratified sample -> one model per applicable axis
(with the sample's design weights, as ``segment_models`` fits) -> every customer assigned. The
purchase axes are fitted; the axes whose inputs the log does not have (categories, discounts,
products, refunds, channels, tickets) are not applicable and say why; nothing anywhere is NaN
or inf. The log ships with ``lifetimes``, a dev dependency: without it these tests fail, they
never skip.
"""

import importlib.util
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.core.features import CustomerFeatures, compute_customer_features
from quimbi_pipeline.core.ingest import ingest_file
from quimbi_pipeline.core.sampling import SampleConfig, design_weights, stratified_sample
from quimbi_pipeline.core.segmentation import (
    Assignment,
    AxisModel,
    assign_to_centroids,
    fit_axis_model,
)
from quimbi_pipeline_tests.datasets import cdnow_master

PURCHASE_AXES = {
    "purchase_frequency",
    "purchase_value",
    "purchase_cadence",
    "customer_maturity",
    "loyalty_trajectory",
    "value_sophistication",
}
# Axis -> a word its not-applicable reason must name: the input the log lacks.
MISSING_INPUT = {
    "category_exploration": "category",
    "price_sensitivity": "discount",
    "repurchase_behavior": "product",
    "return_behavior": "refund",
    "communication_preference": "channel",
    "problem_complexity_profile": "tickets",
    "product_knowledge": "product",
    "support_history": "tickets",
}


@dataclass(frozen=True)
class CdnowRun:
    features: CustomerFeatures
    sample: pl.DataFrame
    models: dict[str, AxisModel]
    assignments: dict[str, Assignment]


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> CdnowRun:
    out = tmp_path_factory.mktemp("cdnow") / "drop"
    report = ingest_file(cdnow_master(), "cdnow-1", out)
    assert report.layout == "cdnow"
    features = compute_customer_features(pl.scan_parquet(out / "accepted"))
    frame = features.frame
    sample = stratified_sample(frame.select("customer_id", "lifetime_value"), SampleConfig())
    fitted_on = frame.join(design_weights(sample, frame), on="customer_id", how="inner")
    models, assignments = {}, {}
    for ax in AXES:
        if not features.applicability[ax.name].applicable:
            continue
        models[ax.name] = fit_axis_model(
            ax.name,
            fitted_on.select(ax.columns()).to_numpy(),
            [f.name for f in ax.features],
            [f.transform for f in ax.features],
            {f.name: (f.high, f.low) for f in ax.features},
            seed=0,
            sample_weight=fitted_on.get_column("weight").to_numpy(),
        )
        everyone = frame.select(ax.columns()).to_numpy()
        assignments[ax.name] = assign_to_centroids(models[ax.name], everyone)
    return CdnowRun(features, sample, models, assignments)


def test_the_purchase_axes_are_fitted_with_several_segments(cdnow: CdnowRun) -> None:
    assert set(cdnow.models) == PURCHASE_AXES
    for name, model in cdnow.models.items():
        assert model.k >= 2 and len(model.segment_names) >= 2, name
        assert len(set(model.segment_names)) == len(model.segment_names), name
        assert sum(model.segment_sizes) == model.sample_size == cdnow.sample.height
        # no segment is empty, and no single segment swallows the sample
        assert min(model.segment_sizes) > 0 and max(model.segment_sizes) < model.sample_size


def test_the_other_axes_are_not_applicable_and_name_the_missing_input(cdnow: CdnowRun) -> None:
    applicability = cdnow.features.applicability
    assert {a.name for a in AXES} - PURCHASE_AXES == set(MISSING_INPUT)
    for name, word in MISSING_INPUT.items():
        verdict = applicability[name]
        assert not verdict.applicable, name
        assert word in verdict.reason, (name, verdict.reason)
    assert all(applicability[name].reason is None for name in PURCHASE_AXES)
    # Dates only: the time-of-day shares are constant, cadence still has the weekday signal.
    constant = set(cdnow.features.constant_features["purchase_cadence"])
    assert {"business_hours_share", "evening_share", "night_share"} <= constant
    assert "weekend_share" not in constant


def test_nothing_is_nan_or_inf(cdnow: CdnowRun) -> None:
    frame = cdnow.features.frame
    assert frame.height == 23_570
    numeric = frame.drop("customer_id").to_numpy()
    assert numeric.dtype == np.float64 and np.isfinite(numeric).all()
    for name, model in cdnow.models.items():
        for part in (
            model.centres_scaled,
            model.centres_original,
            model.scaler_center,
            model.scaler_scale,
        ):
            assert np.isfinite(part).all(), name
        assert np.isfinite([model.silhouette, model.balance, model.score]).all(), name
        assigned = cdnow.assignments[name]
        assert assigned.memberships.shape == (frame.height, len(model.segment_names))
        assert np.isfinite(assigned.memberships).all(), name
        assert np.allclose(assigned.memberships.sum(axis=1), 1.0), name
        assert np.isfinite(assigned.strength).all() and np.isfinite(assigned.distance).all()


def test_the_sample_follows_the_value_tiers(cdnow: CdnowRun) -> None:
    sizes = dict(cdnow.sample.group_by("value_tier").len().iter_rows())
    assert sizes == SampleConfig().requested_sizes()  # every tier is large enough here
    assert cdnow.sample.get_column("customer_id").is_unique().all()
    # the VIP tier is the top 5% by lifetime value
    vip_floor = cdnow.features.frame.get_column("lifetime_value").quantile(0.95, "linear")
    vip = cdnow.sample.filter(pl.col("value_tier") == "vip").get_column("lifetime_value")
    assert vip.min() >= vip_floor


def test_without_lifetimes_the_helper_fails_instead_of_skipping(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="lifetimes"):
        cdnow_master()
