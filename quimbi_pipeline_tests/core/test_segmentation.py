"""Tests of the per-axis segmentation model (pure numpy; seeded, fast)."""

import json
import re

import numpy as np
import pytest
import skfuzzy
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_info

from quimbi_pipeline.core import segmentation
from quimbi_pipeline.core.axis_models import map_axes
from quimbi_pipeline.core.segment_naming import name_segments
from quimbi_pipeline.core.segment_search import (
    count_distinct_rows,
    silhouette_from_distances,
    weighted_cmeans,
)
from quimbi_pipeline.core.segmentation import (
    AxisModel,
    AxisNotFittable,
    SegmentationConfig,
    apply_transforms,
    assign_to_centroids,
    fit_axis_model,
    fit_robust_scaler,
    fuzzy_memberships,
    match_segments,
    transform_and_scale,
)

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
VOCAB = {
    "orders_per_month": ("frequent_buyer", "occasional_buyer"),
    "days_since_last": ("lapsed", "recent_buyer"),
    "lifetime_value": ("big_spender", "small_spender"),
}


def blobs(centres, sizes, spread, seed):
    """Gaussian blobs around ``centres`` with planted labels; ``spread`` per feature or
    per blob (a column).
    """
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=np.float64)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    spread = np.broadcast_to(np.asarray(spread, dtype=np.float64), centres.shape)
    X = centres[labels] + rng.normal(size=(labels.size, centres.shape[1])) * spread[labels]
    return X, labels


# Four tetrahedron corners: every feature is 50/50 bimodal, so the robust scale is the same
# for all three and the blobs stay separated (about 8 within-blob SDs) after scaling.
TETRA = [[0, 0, 0], [8, 8, 0], [8, 0, 8], [0, 8, 8]]
NAMES3 = ["f0", "f1", "f2"]
IDENTITY3 = ["identity"] * 3


@pytest.fixture(scope="module")
def four_blobs():
    X, labels = blobs(TETRA, [400] * 4, 1.0, seed=1)
    model = fit_axis_model("purchase_frequency", X, NAMES3, IDENTITY3, {}, seed=0)
    return X, labels, model


def test_separated_blobs_recover_planted_segments(four_blobs):
    X, labels, model = four_blobs
    assert model.k == 4
    assert model.k_final == 4
    assert [entry["k"] for entry in model.k_scores] == [2, 3, 4, 5, 6]
    assert max(model.k_scores, key=lambda e: e["score"])["k"] == 4
    assert match_segments(assign_to_centroids(model, X).dominant, labels) >= 0.95
    assert sum(model.segment_sizes) == X.shape[0] == model.sample_size
    assert model.silhouette > 0.6


def test_balance_splits_a_mega_segment_that_silhouette_alone_keeps():
    # A big diffuse group and a small far one: silhouette alone stops at 2000 + 150.
    X, labels = blobs([[0, 0, 0], [8, 8, 8]], [2000, 150], [[1.0], [0.3]], seed=2)
    balanced = fit_axis_model(
        "x", X, NAMES3, IDENTITY3, {}, config=SegmentationConfig(subdivide=False)
    )
    silhouette_only = fit_axis_model(
        "x",
        X,
        NAMES3,
        IDENTITY3,
        {},
        config=SegmentationConfig(silhouette_weight=1.0, balance_weight=0.0, subdivide=False),
    )
    assert max(silhouette_only.segment_sizes) / X.shape[0] > 0.9
    assert max(balanced.segment_sizes) / X.shape[0] < 0.6
    # The small group is still a segment of its own, not blended into the big one's pieces.
    dominant = assign_to_centroids(balanced, X).dominant
    small_segment = np.bincount(dominant[labels == 1]).argmax()
    assert np.mean(dominant[labels == 1] == small_segment) >= 0.99
    assert np.mean(labels[dominant == small_segment] == 1) >= 0.99


def _spend_data(dollar_factor: float):
    # orders/recency separate {0,2} from {1,3}; dollars separate {0,1} from {2,3}.
    centres = [[1, 60, 100], [6, 10, 100], [1, 60, 300], [6, 10, 300]]
    X, labels = blobs(centres, [500] * 4, [0.5, 5.0, 40.0], seed=3)
    X[:, 2] *= dollar_factor
    return X, labels


def test_a_dollar_column_times_1000_does_not_dominate():
    names = ["orders_per_month", "days_since_last", "lifetime_value"]
    transforms = ["log1p", "identity", "identity"]
    X1, labels = _spend_data(1.0)
    X1000, _ = _spend_data(1000.0)
    m1 = fit_axis_model("purchase_value", X1, names, transforms, VOCAB)
    m1000 = fit_axis_model("purchase_value", X1000, names, transforms, VOCAB)
    d1 = assign_to_centroids(m1, X1).dominant
    d1000 = assign_to_centroids(m1000, X1000).dominant
    assert match_segments(d1, labels) >= 0.95
    assert match_segments(d1000, labels) >= 0.95
    assert match_segments(d1, d1000) == 1.0
    np.testing.assert_allclose(m1000.centres_scaled, m1.centres_scaled, atol=1e-9)
    np.testing.assert_allclose(m1000.centres_original[:, 2], 1000 * m1.centres_original[:, 2])
    # Without scaling this data does go wrong: the dollars alone decide the clusters.
    naive = KMeans(n_clusters=4, n_init=4, random_state=0).fit_predict(X1000)
    assert match_segments(naive, labels) < 0.8


def test_memberships_are_normalised_finite_and_exact_on_a_centre(four_blobs):
    X, _, model = four_blobs
    far = np.array([[1e9, -1e9, 0.0], [0.0, 0.0, 0.0]])
    a = assign_to_centroids(model, np.vstack([X, far, model.centres_original]))
    assert a.memberships.shape == (X.shape[0] + 2 + model.k_final, model.k_final)
    assert np.isfinite(a.memberships).all() and np.isfinite(a.distance).all()
    np.testing.assert_allclose(a.memberships.sum(axis=1), 1.0, atol=1e-12)
    on_centre = slice(X.shape[0] + 2, None)
    np.testing.assert_array_equal(a.dominant[on_centre], np.arange(model.k_final))
    assert (a.strength[on_centre] > 1 - 1e-9).all()
    assert (a.distance[on_centre] < 1e-9).all()
    np.testing.assert_array_equal(a.strength, a.memberships.max(axis=1))
    # The dominant segment is the nearest centre.
    d = np.linalg.norm(
        transform_and_scale(model, X)[:, None, :] - model.centres_scaled[None], axis=2
    )
    np.testing.assert_array_equal(a.dominant[: X.shape[0]], d.argmin(axis=1))
    np.testing.assert_allclose(a.distance[: X.shape[0]], d.min(axis=1))


def test_fuzzy_memberships_formula_and_zero_distance():
    rng = np.random.default_rng(4)
    d2 = rng.uniform(0.1, 5.0, size=(50, 4))
    for m in (1.5, 2.0, 3.0):
        d = np.sqrt(d2)
        expected = 1.0 / ((d[:, :, None] / d[:, None, :]) ** (2 / (m - 1))).sum(axis=2)
        np.testing.assert_allclose(fuzzy_memberships(d2, m), expected, rtol=1e-12)
    exact = fuzzy_memberships(np.array([[0.0, 1.0, 4.0], [1e-300, 1e300, 1.0]]), 2.0)
    np.testing.assert_array_equal(exact[0], [1.0, 0.0, 0.0])
    assert np.isfinite(exact).all()
    np.testing.assert_allclose(exact.sum(axis=1), 1.0)
    assert exact[1, 0] == pytest.approx(1.0)


def test_chunked_assignment_matches_one_block(four_blobs, monkeypatch):
    X, _, model = four_blobs
    whole = assign_to_centroids(model, X)
    monkeypatch.setattr(segmentation, "ASSIGN_CHUNK_ROWS", 7)
    chunked = assign_to_centroids(model, X)
    np.testing.assert_array_equal(chunked.memberships, whole.memberships)
    np.testing.assert_array_equal(chunked.dominant, whole.dominant)


def test_to_dict_from_dict_round_trip_through_json(four_blobs):
    X, _, model = four_blobs
    restored = AxisModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored == model
    assert isinstance(restored.centres_scaled, np.ndarray)
    a, b = assign_to_centroids(model, X), assign_to_centroids(restored, X)
    np.testing.assert_array_equal(a.memberships, b.memberships)
    np.testing.assert_array_equal(a.distance, b.distance)


def test_same_seed_same_model_and_names_stable_across_seeds(four_blobs):
    X, _, model = four_blobs
    global_state = np.random.get_state()
    again = fit_axis_model("purchase_frequency", X, NAMES3, IDENTITY3, {}, seed=0)
    other_seed = fit_axis_model("purchase_frequency", X, NAMES3, IDENTITY3, {}, seed=7)
    assert again.to_dict() == model.to_dict()
    assert other_seed.segment_names == model.segment_names
    np.testing.assert_allclose(other_seed.centres_scaled, model.centres_scaled, atol=1e-4)
    # No fit touches numpy's global generator (skfuzzy's seed= would).
    after = np.random.get_state()
    assert global_state[0] == after[0] and np.array_equal(global_state[1], after[1])


def test_axes_fitted_two_at_a_time_are_the_models_of_a_loop_in_order():
    # Different data per item, so a result landing in another item's place would show.
    datasets = [blobs(TETRA, [150 + 25 * i] * 4, 1.0, seed=i)[0] for i in range(5)]

    def fit(X):
        return fit_axis_model("purchase_frequency", X, NAMES3, IDENTITY3, {}, seed=0).to_dict()

    limits_before = threadpool_info()
    in_parallel = list(map_axes(fit, datasets, threads=2))
    assert in_parallel == [fit(X) for X in datasets]
    # Fits leave the process's BLAS/OpenMP thread limits as they found them.
    assert threadpool_info() == limits_before


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_names_are_unique_snake_case_business_words(seed):
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [rng.lognormal(0.5, 0.8, 3000), rng.exponential(30, 3000), rng.lognormal(4, 1, 3000)]
    )
    vocab = {"orders_per_month": ("Frequent Buyer", "occasional-buyer")} | {
        k: v for k, v in VOCAB.items() if k != "orders_per_month"
    }
    names = ["orders_per_month", "days_since_last", "lifetime_value"]
    model = fit_axis_model("purchase_frequency", X, names, ["log1p"] * 3, vocab, seed=seed)
    assert len(set(model.segment_names)) == len(model.segment_names) == model.k_final
    assert all(SNAKE.match(n) for n in model.segment_names), model.segment_names
    known = {w for pair in VOCAB.values() for w in pair} | {"typical_frequency"}
    for name in model.segment_names:
        assert any(name.startswith(w) for w in known), name


def test_naming_rules():
    features = ["orders_per_month", "lifetime_value"]
    centres = [[2.0, 1.0], [2.0, -1.0], [-2.0, 0.1], [0.1, -0.2], [0.2, 0.3]]
    names = name_segments("purchase_frequency", features, VOCAB, centres, [None] * 5)
    assert names == [
        "frequent_buyer_big_spender",
        "frequent_buyer_small_spender",
        "occasional_buyer",
        "typical_frequency_lower_lifetime_value",
        "typical_frequency_higher_lifetime_value",
    ]
    # A parent keeps the short name; its children carry the distinguishing word.
    tree = name_segments(
        "purchase_frequency",
        features,
        VOCAB,
        [[2.0, 0.1], [2.5, 1.0], [2.4, -1.0]],
        [None, 0, 0],
    )
    assert tree == ["frequent_buyer", "frequent_buyer_big_spender", "frequent_buyer_small_spender"]
    # Same words, different intensity on the named feature.
    intensity = name_segments(
        "purchase_frequency", features, VOCAB, [[3.5, 0.0], [2.0, 0.1], [-1.0, 0.0]], [None] * 3
    )
    assert intensity == ["very_frequent_buyer", "moderately_frequent_buyer", "occasional_buyer"]
    # Identical centres: the numeric suffix is the last resort.
    same = name_segments("x", features, VOCAB, [[1.0, 0.0]] * 4, [None] * 4)
    assert same == ["frequent_buyer", "frequent_buyer_2", "frequent_buyer_3", "frequent_buyer_4"]


def test_subdivision_splits_a_bimodal_mega_segment_and_records_the_parent():
    X, labels = blobs([[0, 0], [4, 0], [20, 20]], [2000, 2000, 1000], 1.0, seed=5)
    names = ["orders_per_month", "lifetime_value"]
    config = SegmentationConfig(k_max=2)
    model = fit_axis_model("purchase_value", X, names, ["identity"] * 2, VOCAB, config=config)
    flat = fit_axis_model(
        "purchase_value",
        X,
        names,
        ["identity"] * 2,
        VOCAB,
        config=SegmentationConfig(k_max=2, subdivide=False),
    )
    assert flat.k == model.k == 2 and flat.k_final == 2
    assert model.k_final == 3
    assert match_segments(assign_to_centroids(model, X).dominant, labels) >= 0.95
    parents = [p for p in model.segment_parents if p is not None]
    assert len(parents) == 2 and len(set(parents)) == 1
    assert parents[0] not in model.segment_names
    # The parent is the mega-segment of the unsplit fit.
    assert parents[0] in flat.segment_names
    assert model.segment_parents.count(None) == 1


def test_noise_is_not_subdivided():
    X = np.random.default_rng(6).normal(size=(3000, 6))
    model = fit_axis_model("x", X, [f"f{i}" for i in range(6)], ["identity"] * 6, {})
    assert model.k_final == model.k
    assert model.segment_parents == [None] * model.k


def test_gmm_chooses_k_by_bic(four_blobs):
    X, labels, _ = four_blobs
    config = SegmentationConfig(algorithm="gmm")
    model = fit_axis_model("purchase_frequency", X, NAMES3, IDENTITY3, {}, config=config)
    assert model.algorithm == "gmm" and model.k == 4
    assert all("bic" in entry for entry in model.k_scores)
    assert min(model.k_scores, key=lambda e: e["bic"])["k"] == 4
    a = assign_to_centroids(model, X)
    assert match_segments(a.dominant, labels) >= 0.95
    np.testing.assert_allclose(a.memberships.sum(axis=1), 1.0)
    assert AxisModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model


def test_too_few_customers_is_not_fittable():
    X = np.random.default_rng(7).normal(size=(12, 3))
    with pytest.raises(AxisNotFittable) as info:
        fit_axis_model("purchase_value", X, NAMES3, IDENTITY3, {})
    assert info.value.reason == "only 12 customers (need 30)"
    assert "purchase_value" in str(info.value)


def test_constant_features_are_not_fittable():
    X = np.tile([3.0, -5.0, 7.0], (200, 1))
    with pytest.raises(AxisNotFittable, match="all features constant"):
        fit_axis_model("return_behavior", X, NAMES3, IDENTITY3, {})
    # Negative values clip to 0 before log1p: a column of negatives is constant too.
    X = np.random.default_rng(8).uniform(-10, -1, size=(200, 3))
    with pytest.raises(AxisNotFittable, match="all features constant"):
        fit_axis_model("return_behavior", X, NAMES3, ["log1p"] * 3, {})


def test_a_constant_column_contributes_nothing(four_blobs):
    X, labels, _ = four_blobs
    with_const = np.column_stack([X, np.full(X.shape[0], 42.0)])
    model = fit_axis_model("x", with_const, [*NAMES3, "c"], [*IDENTITY3, "identity"], {})
    assert model.scaler_scale[3] == 1.0
    assert np.all(model.centres_scaled[:, 3] == 0.0)
    assert match_segments(assign_to_centroids(model, with_const).dominant, labels) >= 0.95


def test_few_distinct_points_cap_k():
    X = np.repeat([[0.0, 0.0], [10.0, 10.0]], 50, axis=0)
    model = fit_axis_model("x", X, ["a", "b"], ["identity"] * 2, {})
    assert model.k == 2 and [e["k"] for e in model.k_scores] == [2]
    assert sorted(model.segment_sizes) == [50, 50]


@pytest.mark.parametrize("distinct_in_head", [1, 2, 5])
def test_count_distinct_rows_capped_equals_full_count(distinct_in_head):
    # The first 500 rows repeat a few points; distinct ones appear only far down, past the
    # rows the cap looks at first.
    rng = np.random.default_rng(distinct_in_head)
    head = rng.normal(size=(distinct_in_head, 3))[rng.integers(0, distinct_in_head, 500)]
    tail = np.vstack([head[:200], rng.normal(size=(4, 3)), head[:100]])
    z = np.vstack([head, tail])
    full = np.unique(z, axis=0).shape[0]
    assert full == distinct_in_head + 4
    assert count_distinct_rows(z) == full
    for at_most in range(1, 12):
        assert count_distinct_rows(z, at_most=at_most) == min(full, at_most)


def test_transforms_and_robust_scaler():
    T = apply_transforms(np.array([[-5.0, -5.0], [np.e - 1, 2.0]]), ["log1p", "identity"])
    np.testing.assert_allclose(T, [[0.0, -5.0], [1.0, 2.0]])
    rng = np.random.default_rng(9)
    mostly_zero = np.where(rng.uniform(size=1000) < 0.1, 5.0, 0.0)
    normal = rng.normal(10, 2, size=1000)
    center, scale, constant = fit_robust_scaler(
        np.column_stack([normal, mostly_zero, np.ones(1000)])
    )
    assert scale[0] == pytest.approx(2.0, rel=0.1)
    assert scale[1] == pytest.approx(mostly_zero.std())
    assert scale[2] == 1.0
    np.testing.assert_array_equal(constant, [False, False, True])
    assert center[1] == 0.0


def test_silhouette_matches_sklearn():
    X, labels = blobs(TETRA, [30, 30, 1, 20], 2.0, seed=10)
    dist = np.linalg.norm(X[:, None] - X[None], axis=2)
    assert silhouette_from_distances(dist, labels) == pytest.approx(
        silhouette_score(X, labels), abs=1e-12
    )


def test_match_segments():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert match_segments(a, (a + 1) % 3) == 1.0
    assert match_segments(["x", "x", "y", "y"], [0, 1, 2, 2]) == 0.75
    with pytest.raises(ValueError):
        match_segments([0, 1], [0, 1, 2])


def test_bad_inputs_raise_value_errors():
    X = np.random.default_rng(11).normal(size=(100, 3))
    with pytest.raises(ValueError, match="k_max"):
        SegmentationConfig(k_max=11)
    with pytest.raises(ValueError, match="algorithm"):
        SegmentationConfig(algorithm="dbscan")
    with pytest.raises(ValueError, match="transforms"):
        fit_axis_model("x", X, NAMES3, ["log", "identity", "identity"], {})
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_axis_model("x", X, NAMES3, IDENTITY3, {})


def test_unit_weights_fit_the_unweighted_model(four_blobs):
    X, _, model = four_blobs
    weighted = fit_axis_model(
        "purchase_frequency", X, NAMES3, IDENTITY3, {}, seed=0, sample_weight=np.ones(len(X))
    )
    assert weighted.segment_names == model.segment_names
    assert weighted.segment_sizes == model.segment_sizes
    np.testing.assert_allclose(weighted.centres_scaled, model.centres_scaled, atol=1e-9)
    np.testing.assert_allclose(weighted.scaler_scale, model.scaler_scale, rtol=1e-12)


def test_weighted_cmeans_with_unit_weights_is_skfuzzy():
    X, _ = blobs(TETRA[:3], [200, 150, 100], 1.0, seed=12)
    u0 = fuzzy_memberships(cdist(X, X[[0, 200, 350]], "sqeuclidean"), 2.0).T
    config = SegmentationConfig()
    expected, *_ = skfuzzy.cmeans(
        X.T, c=3, m=2.0, error=config.fcm_error, maxiter=config.fcm_maxiter, init=u0
    )
    np.testing.assert_allclose(weighted_cmeans(X, u0, np.ones(len(X)), config), expected)
    # Without weights, as the unweighted fits (population fits of the fidelity check) run it.
    np.testing.assert_allclose(weighted_cmeans(X, u0, None, config), expected)


def test_design_weights_make_a_value_skewed_sample_fit_like_the_population():
    # A long-tailed value and a noise column; the sample takes 500 customers from the top 10%
    # and 500 from the rest, as the stratified sample over-represents high value customers.
    rng = np.random.default_rng(3)
    population = np.column_stack([rng.exponential(1.0, 10_000), rng.normal(0.0, 1.0, 10_000)])
    top = population[:, 0] >= np.quantile(population[:, 0], 0.9)
    drawn = [rng.choice(np.flatnonzero(part), 500, replace=False) for part in (top, ~top)]
    sample = population[np.concatenate(drawn)]
    weights = np.repeat([top.sum() / 500, (~top).sum() / 500], 500)
    config = SegmentationConfig(k_min=3, k_max=3, subdivide=False)
    args = (["value", "noise"], ["identity", "identity"], {})

    def labels(model):
        return assign_to_centroids(model, population).dominant

    truth = labels(fit_axis_model("v", population, *args, config=config))
    weighted = fit_axis_model("v", sample, *args, config=config, sample_weight=weights)
    plain = fit_axis_model("v", sample, *args, config=config)
    assert match_segments(truth, labels(weighted)) >= 0.95
    assert match_segments(truth, labels(plain)) < 0.8
    with pytest.raises(ValueError, match="sample_weight"):
        fit_axis_model("v", sample, *args, sample_weight=-weights)


def test_weighted_silhouette_with_unit_weights_is_the_plain_one():
    X, labels = blobs(TETRA, [30, 30, 1, 20], 2.0, seed=10)
    dist = np.linalg.norm(X[:, None] - X[None], axis=2)
    plain = silhouette_from_distances(dist, labels)
    assert silhouette_from_distances(dist, labels, np.ones(len(X))) == pytest.approx(plain)
    # weighting one cluster up moves the mean towards that cluster's silhouettes
    heavy = np.where(labels == 0, 10.0, 1.0)
    assert silhouette_from_distances(dist, labels, heavy) != pytest.approx(plain)
