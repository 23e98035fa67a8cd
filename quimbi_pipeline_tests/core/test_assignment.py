"""Batch assignment of customers to stored axis models (pure; seeded)."""

import json
import zlib

import numpy as np
import polars as pl
import pytest

from quimbi_pipeline.core.archetypes import archetype_frame, archetype_id
from quimbi_pipeline.core.assignment import (
    BELONGS_THRESHOLD,
    FUZZY_FLOOR,
    JSON_COLUMNS,
    assign_batch,
    batch_rows,
    customer_batch,
)
from quimbi_pipeline.core.segmentation import AxisModel
from quimbi_pipeline_tests.jsonb_order import loads_in_jsonb_order


def axis_model(axis: str, features: list[str], centres: list[list[float]], names: list[str]):
    """A stored model with identity scaling, so its centres are in raw feature units."""
    centres_array = np.asarray(centres, dtype=np.float64)
    return AxisModel(
        axis=axis,
        feature_names=features,
        transforms=["identity"] * len(features),
        scaler_center=np.zeros(len(features)),
        scaler_scale=np.ones(len(features)),
        centres_scaled=centres_array,
        centres_original=centres_array,
        segment_names=names,
        segment_parents=[None] * len(names),
        segment_sizes=[10] * len(names),
        k=len(names),
        silhouette=0.5,
        balance=0.5,
        score=0.5,
    )


MODELS = {
    "price_sensitivity": axis_model(
        "price_sensitivity",
        ["discount_share", "discount_depth"],
        [[0.0, 0.0], [0.8, 0.1], [0.5, 0.6]],
        ["full_price_buyer", "deal_hunter", "deep_discount_seeker"],
    ),
    "purchase_cadence": axis_model(
        "purchase_cadence",
        ["weekend_share"],
        [[0.1], [0.9]],
        ["weekday_shopper", "weekend_shopper"],
    ),
    "return_behavior": axis_model(
        "return_behavior",
        ["refund_rate", "refunded_orders", "has_returned"],
        [[0.0, 0.0, 0.0], [0.3, 0.4, 1.0], [0.05, 0.1, 1.0], [0.6, 0.9, 1.0]],
        ["keeper", "frequent_returner", "rare_returner", "heavy_returner"],
    ),
}


def features(n: int, seed: int) -> pl.DataFrame:
    """Random features for every column of MODELS, plus one of an axis without a model."""
    rng = np.random.default_rng(seed)
    columns = {
        f"{axis}__{name}": rng.random(n) for axis, m in MODELS.items() for name in m.feature_names
    }
    # Ties on purpose: a handful of identical customers must share their archetype.
    frame = pl.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)], **columns})
    frame = pl.concat([frame, frame.head(5).with_columns(pl.col("customer_id") + "_twin")])
    return frame.with_columns(support_history__tickets=pl.lit(3.0))


@pytest.fixture(scope="module", params=[0, 1, 2])
def assigned(request: pytest.FixtureRequest):
    frame = features(400, seed=request.param)
    return frame, assign_batch(frame, MODELS)


def test_customer_batch_is_crc32_of_the_id_modulo_the_batch_count() -> None:
    ids = pl.Series(["7000000001", "c00042", "émilie@example.com"])
    expected = [zlib.crc32(i.encode()) % 16 for i in ids]
    assert customer_batch(ids, 16).to_list() == expected
    # Pinned values: a change of hash would silently move customers to other partitions.
    assert customer_batch(pl.Series(["7000000001", "c00042"]), 16).to_list() == [9, 7]


def test_customer_batch_spreads_customers_over_every_batch() -> None:
    ids = pl.Series([str(7_000_000_000 + i) for i in range(16_000)])
    counts = customer_batch(ids, 16).value_counts()
    assert counts.height == 16
    assert counts["count"].min() > 800 and counts["count"].max() < 1200


def test_batch_rows_give_each_batch_its_rows_in_row_order() -> None:
    frame = pl.DataFrame({"customer_id": [str(7_000_000_000 + i) for i in range(5_000)]})
    batch = customer_batch(frame["customer_id"], 16)
    rows = batch_rows(batch, 16)
    assert sorted(np.concatenate(rows).tolist()) == list(range(frame.height))
    for b, taken in enumerate(rows):
        expected = frame.filter(batch == b)
        assert frame.select(pl.all().gather(taken)).equals(expected)
    # A batch without customers is an empty selection, not a missing one.
    assert [len(r) for r in batch_rows(pl.Series([2, 0, 2], dtype=pl.Int32), 4)] == [1, 0, 2, 0]


def test_memberships_sum_to_one_and_dominant_is_the_argmax(assigned) -> None:
    frame, result = assigned
    long = result.long
    assert long.height == frame.height * len(MODELS)
    for axis, model in MODELS.items():
        rows = long.filter(pl.col("axis") == axis)
        memberships = np.vstack(rows["memberships"].to_list())
        assert memberships.shape == (frame.height, len(model.segment_names))
        np.testing.assert_allclose(memberships.sum(axis=1), 1.0, atol=1e-9)
        argmax = np.asarray(model.segment_names)[memberships.argmax(axis=1)]
        assert rows["dominant_segment"].to_list() == argmax.tolist()
        np.testing.assert_allclose(rows["strength"].to_numpy(), memberships.max(axis=1))


def test_dominant_is_the_nearest_centre_of_the_models_own_columns(assigned) -> None:
    frame, result = assigned
    model = MODELS["return_behavior"]
    X = frame.select(f"return_behavior__{f}" for f in model.feature_names).to_numpy()
    distances = np.linalg.norm(X[:, None, :] - model.centres_scaled[None], axis=2)
    rows = result.long.filter(pl.col("axis") == "return_behavior")
    nearest = np.asarray(model.segment_names)[distances.argmin(axis=1)]
    assert rows["dominant_segment"].to_list() == nearest.tolist()
    np.testing.assert_allclose(rows["distance"].to_numpy(), distances.min(axis=1))


def test_json_columns_hold_exactly_the_axes_with_a_model(assigned) -> None:
    frame, result = assigned
    customers = result.customers
    assert customers["customer_id"].to_list() == frame["customer_id"].to_list()
    for column in JSON_COLUMNS:
        for text in customers[column]:
            assert set(json.loads(text)) == set(MODELS)


def test_json_columns_agree_with_the_memberships(assigned) -> None:
    _, result = assigned
    long = {(r["customer_id"], r["axis"]): r for r in result.long.iter_rows(named=True)}
    for row in result.customers.iter_rows(named=True):
        dominant = json.loads(row["dominant_segments"])
        strengths = json.loads(row["membership_strengths"])
        fuzzy = json.loads(row["fuzzy_memberships"])
        belongs = json.loads(row["segment_memberships"])
        for axis, model in MODELS.items():
            memberships = long[row["customer_id"], axis]["memberships"]
            exact = dict(zip(model.segment_names, memberships, strict=True))
            assert dominant[axis] == long[row["customer_id"], axis]["dominant_segment"]
            assert strengths[axis] == pytest.approx(exact[dominant[axis]], abs=5e-4)
            assert fuzzy[axis] == {
                s: pytest.approx(m, abs=5e-4)
                for s, m in exact.items()
                if round(m, 3) >= FUZZY_FLOOR
            }
            assert fuzzy[axis][dominant[axis]] == strengths[axis] == max(fuzzy[axis].values())
            assert belongs[axis][0] == dominant[axis]
            assert set(belongs[axis]) == {
                s for s, m in exact.items() if round(m, 3) >= BELONGS_THRESHOLD
            } | {dominant[axis]}
        assert row["overall_confidence"] == pytest.approx(
            np.mean([long[row["customer_id"], a]["strength"] for a in MODELS])
        )


def test_json_objects_list_their_keys_in_jsonb_storage_order(assigned) -> None:
    _, result = assigned
    for column in JSON_COLUMNS:
        for text in result.customers[column]:
            loads_in_jsonb_order(text)
    # The axes' own names are not in that order, so the test above can fail.
    assert sorted(MODELS) != sorted(MODELS, key=lambda k: (len(k), k))


def test_archetype_ids_follow_the_dominant_signature(assigned) -> None:
    frame, result = assigned
    customers = result.customers
    reference = archetype_frame(result.long.select("customer_id", "axis", "dominant_segment"))
    joined = customers.join(reference, on="customer_id", validate="1:1")
    assert joined.height == frame.height
    assert (joined["archetype_id"] == joined["archetype_id_right"]).all()
    assert (joined["archetype_signature"] == joined["signature"]).all()
    for row in customers.iter_rows(named=True):
        assert row["archetype_id"] == archetype_id(json.loads(row["dominant_segments"]))
    # Equal signatures <=> equal ids.
    pairs = customers.select("archetype_id", "dominant_segments").unique()
    assert pairs["archetype_id"].n_unique() == pairs["dominant_segments"].n_unique()
    twins = customers.filter(pl.col("customer_id").str.ends_with("_twin"))
    originals = customers.filter(
        pl.col("customer_id").is_in(twins["customer_id"].str.head(6).to_list())
    )
    assert twins["archetype_id"].to_list() == originals["archetype_id"].to_list()


def test_assignment_is_deterministic(assigned) -> None:
    frame, result = assigned
    again = assign_batch(frame, MODELS)
    assert again.customers.equals(result.customers)
    assert again.long.equals(result.long)


def test_without_models_the_profile_columns_are_null() -> None:
    result = assign_batch(features(10, seed=0), {})
    assert result.long.height == 0
    for column in (*JSON_COLUMNS, "archetype_id", "overall_confidence"):
        assert result.customers[column].null_count() == result.customers.height == 15
