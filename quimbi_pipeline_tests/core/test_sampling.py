import polars as pl
import pytest

from quimbi_pipeline.core.sampling import (
    TIERS,
    SampleConfig,
    design_weights,
    sample_plan,
    stratified_sample,
    value_tiers,
)


def _metrics(n: int) -> pl.DataFrame:
    """Customers c00000.. with lifetime values 1..n, so percentile cuts are easy to compute."""
    return pl.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "lifetime_value": [float(i + 1) for i in range(n)],
        }
    )


def _tier_sizes(frame: pl.DataFrame) -> dict[str, int]:
    counts = dict(frame.group_by("value_tier").len().iter_rows())
    return {tier: counts.get(tier, 0) for tier in TIERS}


def test_value_tiers_follow_percentile_cuts() -> None:
    tiers = value_tiers(_metrics(1000))
    # Values 1..1000: p95 = 950.05, p80 = 800.2, p50 = 500.5 (linear interpolation).
    assert _tier_sizes(tiers) == {"vip": 50, "high": 150, "mid": 300, "low": 500}
    assert tiers.filter(pl.col("lifetime_value") == 951.0)["value_tier"].item() == "vip"
    assert tiers.filter(pl.col("lifetime_value") == 950.0)["value_tier"].item() == "high"


def test_ties_at_a_cut_all_go_to_the_upper_tier() -> None:
    # Half the customers share the median value: all of them land in "mid", none in "low".
    metrics = pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(10)],
            "lifetime_value": [1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0, 5.0, 9.0, 10.0],
        }
    )
    tiers = value_tiers(metrics)
    assert set(tiers.filter(pl.col("lifetime_value") == 5.0)["value_tier"]) == {"mid"}
    shuffled = value_tiers(metrics.reverse()).sort("customer_id")
    assert shuffled.equals(tiers.sort("customer_id"))


def test_null_lifetime_value_is_low() -> None:
    metrics = _metrics(10).vstack(
        pl.DataFrame({"customer_id": ["none"], "lifetime_value": [None]}, schema=_metrics(1).schema)
    )
    tiers = value_tiers(metrics)
    assert tiers.filter(pl.col("customer_id") == "none")["value_tier"].item() == "low"


def test_default_sizes_when_every_tier_is_large_enough() -> None:
    sample = stratified_sample(_metrics(100_000))
    assert sample.height == 5000
    assert _tier_sizes(sample) == {"vip": 1000, "high": 1500, "mid": 1500, "low": 1000}
    assert sample["customer_id"].n_unique() == 5000
    assert sample.columns == ["customer_id", "value_tier", "lifetime_value"]
    # Every sampled row keeps the tier its lifetime value puts it in.
    expected = value_tiers(_metrics(100_000)).select("customer_id", "value_tier")
    assert (
        sample.join(expected, on="customer_id")
        .filter(pl.col("value_tier") != pl.col("value_tier_right"))
        .is_empty()
    )


def test_small_tier_is_capped_not_redistributed() -> None:
    # 4,000 customers: vip holds 200 but asks for 1,000; the shortfall is not moved elsewhere.
    plan = sample_plan(_metrics(4000))
    assert plan.rows() == [
        ("vip", 200, 1000, 200),
        ("high", 600, 1500, 600),
        ("mid", 1200, 1500, 1200),
        ("low", 2000, 1000, 1000),
    ]
    sample = stratified_sample(_metrics(4000))
    assert _tier_sizes(sample) == dict(plan.select("value_tier", "sampled").iter_rows())


def test_tiny_population_is_sampled_whole() -> None:
    metrics = _metrics(20)
    sample = stratified_sample(metrics)
    assert sorted(sample["customer_id"]) == sorted(metrics["customer_id"])
    assert _tier_sizes(sample) == {"vip": 1, "high": 3, "mid": 6, "low": 10}


def test_same_seed_same_sample_other_seed_differs() -> None:
    metrics = _metrics(20_000)
    first = stratified_sample(metrics, seed=7)
    assert first.equals(stratified_sample(metrics, seed=7))
    assert not first.equals(stratified_sample(metrics, seed=8))


def test_sample_is_independent_of_row_order() -> None:
    metrics = _metrics(20_000)
    shuffled = metrics.sample(fraction=1.0, shuffle=True, seed=3)
    assert not shuffled.equals(metrics)
    assert stratified_sample(shuffled, seed=5).equals(stratified_sample(metrics, seed=5))


@pytest.mark.parametrize(
    ("total", "shares", "expected"),
    [
        (5000, {"vip": 0.2, "high": 0.3, "mid": 0.3, "low": 0.2}, [1000, 1500, 1500, 1000]),
        (10, {"vip": 0.25, "high": 0.25, "mid": 0.25, "low": 0.25}, [3, 3, 2, 2]),
        (7, {"vip": 0.0, "high": 0.0, "mid": 0.5, "low": 0.5}, [0, 0, 4, 3]),
    ],
)
def test_requested_sizes_sum_to_total(
    total: int, shares: dict[str, float], expected: list[int]
) -> None:
    sizes = SampleConfig(total=total, shares=shares).requested_sizes()
    assert [sizes[tier] for tier in TIERS] == expected
    assert sum(sizes.values()) == total


@pytest.mark.parametrize(
    "shares",
    [
        {"vip": 0.2, "high": 0.3, "mid": 0.3, "low": 0.3},
        {"vip": 0.5, "high": 0.5, "mid": 0.0},
        {"vip": 0.5, "high": 0.5, "mid": 0.5, "low": -0.5},
    ],
)
def test_invalid_shares_are_rejected(shares: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="shares"):
        SampleConfig(shares=shares)


def test_duplicate_customers_are_rejected() -> None:
    with pytest.raises(ValueError, match="one row per customer_id"):
        stratified_sample(pl.concat([_metrics(5), _metrics(5)]))


def test_design_weights_make_each_tier_stand_for_its_population() -> None:
    metrics = _metrics(4000)
    sample = stratified_sample(metrics, SampleConfig(total=1000))
    weighted = design_weights(sample, metrics)
    assert weighted.get_column("customer_id").to_list() == sample["customer_id"].to_list()
    tiers = sample.select("value_tier").with_columns(weight=weighted["weight"])
    # population / sampled per tier: vip 200 / 200, high 600 / 300, mid 1200 / 300, low 2000 / 200
    per_tier = dict(tiers.unique().iter_rows())
    assert per_tier == {"vip": 1.0, "high": 2.0, "mid": 4.0, "low": 10.0}
    assert weighted["weight"].sum() == pytest.approx(metrics.height)
