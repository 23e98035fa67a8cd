import math

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quimbi_pipeline.core.drift import (
    DRIFT_SUFFIX,
    MODEL_CHANGED,
    SEVERITIES,
    axis_drift,
    axis_drift_long,
    customer_drift,
    customer_drift_wide,
    severity,
    severity_counts,
    thumbprint_drift,
    top_movers,
    transition_counts,
)

_SCHEMA = {
    "customer_id": pl.String(),
    "axis": pl.String(),
    "memberships": pl.List(pl.Float64()),
    "dominant_segment": pl.String(),
}


def _snapshot(rows: list[tuple[str, str, list[float] | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row")


def _row(frame: pl.DataFrame, customer: str, axis: str) -> dict:
    return frame.filter((pl.col("customer_id") == customer) & (pl.col("axis") == axis)).row(
        0, named=True
    )


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (0.0, "STABLE"),
        (0.0999, "STABLE"),
        (0.1, "MINOR"),
        (0.2999, "MINOR"),
        (0.3, "MODERATE"),
        (0.5, "SIGNIFICANT"),
        (0.6999, "SIGNIFICANT"),
        (0.7, "MAJOR"),
        (1.0, "MAJOR"),
    ],
)
def test_severity_boundaries_fall_in_the_upper_class(drift: float, expected: str) -> None:
    assert severity(drift) == expected
    as_expression = pl.DataFrame({"d": [drift]}).select(severity(pl.col("d"))).item()
    assert as_expression == expected


@pytest.mark.parametrize("drift", [None, float("nan")])
def test_severity_of_null_or_nan_is_null(drift: float | None) -> None:
    assert severity(drift) is None
    frame = pl.DataFrame({"d": [drift]}, schema={"d": pl.Float64})
    assert frame.select(severity(pl.col("d"))).item() is None


def test_identical_snapshots_have_zero_drift() -> None:
    snap = _snapshot(
        [
            ("c1", "price", [0.2, 0.5, 0.3], "mid"),
            ("c1", "timing", [0.9, 0.1], "weekday"),
            ("c2", "price", [0.6, 0.3, 0.1], "low"),
        ]
    )
    drift = axis_drift(snap, snap, days_between=7)
    assert drift.height == 3
    assert drift["drift"].to_list() == [0.0, 0.0, 0.0]
    assert set(drift["severity"]) == {"STABLE"}
    assert not drift["segment_changed"].any()


def test_one_hot_flip_is_full_drift() -> None:
    previous = _snapshot([("c1", "price", [1.0, 0.0, 0.0], "deal_hunter")])
    current = _snapshot([("c1", "price", [0.0, 1.0, 0.0], "full_price")])
    row = _row(axis_drift(previous, current, days_between=14), "c1", "price")
    assert row["drift"] == 1.0
    assert row["severity"] == "MAJOR"
    assert row["segment_changed"] is True
    assert (row["previous_segment"], row["current_segment"]) == ("deal_hunter", "full_price")
    assert row["velocity"] == pytest.approx(1.0 / 14)


def test_drift_is_capped_at_one() -> None:
    # Memberships that do not sum to 1 (an unnormalised model) can not push drift above 1.
    previous = _snapshot([("c1", "price", [1.5, 0.0], "a")])
    current = _snapshot([("c1", "price", [0.0, 1.5], "b")])
    assert axis_drift(previous, current, days_between=1)["drift"].item() == 1.0


def test_partial_move_drift_and_velocity() -> None:
    previous = _snapshot([("c1", "price", [0.8, 0.2], "deal_hunter")])
    current = _snapshot([("c1", "price", [0.6, 0.4], "deal_hunter")])
    row = _row(axis_drift(previous, current, days_between=7), "c1", "price")
    expected = math.sqrt(0.2**2 + 0.2**2) / math.sqrt(2)
    assert row["drift"] == pytest.approx(expected)
    assert row["severity"] == "MINOR"
    assert row["segment_changed"] is False
    assert row["velocity"] == pytest.approx(expected / 7)


def test_customer_or_axis_in_one_snapshot_only_is_excluded() -> None:
    previous = _snapshot(
        [
            ("both", "price", [1.0, 0.0], "a"),
            ("gone", "price", [1.0, 0.0], "a"),
            ("both", "timing", [1.0, 0.0], "x"),
            ("both", "channel", None, None),
        ]
    )
    current = _snapshot(
        [
            ("both", "price", [0.0, 1.0], "b"),
            ("new", "price", [1.0, 0.0], "a"),
            ("both", "channel", [1.0, 0.0], "web"),
        ]
    )
    drift = axis_drift(previous, current, days_between=7)
    assert drift.select("customer_id", "axis").rows() == [("both", "price")]


def test_changed_segment_count_is_model_changed_not_a_crash() -> None:
    previous = _snapshot(
        [("c1", "price", [0.5, 0.5], "a"), ("c1", "timing", [1.0, 0.0], "weekday")]
    )
    current = _snapshot(
        [("c1", "price", [0.2, 0.3, 0.5], "c"), ("c1", "timing", [1.0, 0.0], "weekday")]
    )
    drift = axis_drift(previous, current, days_between=7)
    price = _row(drift, "c1", "price")
    assert price["severity"] == MODEL_CHANGED
    assert price["drift"] is None and price["velocity"] is None
    assert price["segment_changed"] is True
    assert _row(drift, "c1", "timing")["severity"] == "STABLE"

    summary = customer_drift(drift).row(0, named=True)
    # The re-fit axis is left out of the mean rather than counted as zero drift.
    assert summary["axes_compared"] == 1
    assert summary["overall_drift"] == 0.0


@pytest.mark.parametrize("days_between", [0, -7, float("nan")])
def test_non_positive_days_between_is_rejected(days_between: float) -> None:
    snap = _snapshot([("c1", "price", [1.0, 0.0], "a")])
    with pytest.raises(ValueError, match="days_between"):
        axis_drift(snap, snap, days_between=days_between)


def _two_customers() -> pl.DataFrame:
    previous = _snapshot(
        [
            ("mover", "price", [1.0, 0.0], "deal_hunter"),
            ("mover", "timing", [1.0, 0.0], "weekday"),
            ("steady", "price", [1.0, 0.0], "deal_hunter"),
            ("steady", "timing", [0.95, 0.05], "weekday"),
        ]
    )
    current = _snapshot(
        [
            ("mover", "price", [0.0, 1.0], "full_price"),
            ("mover", "timing", [1.0, 0.0], "weekday"),
            ("steady", "price", [1.0, 0.0], "deal_hunter"),
            ("steady", "timing", [0.9, 0.1], "weekday"),
        ]
    )
    return axis_drift(previous, current, days_between=7)


@pytest.mark.parametrize(("threshold", "mover_anomalous"), [(0.5, True), (0.51, False)])
def test_customer_drift_summary_and_anomaly(threshold: float, mover_anomalous: bool) -> None:
    summary = customer_drift(_two_customers(), anomaly_threshold=threshold)
    mover = summary.filter(pl.col("customer_id") == "mover").row(0, named=True)
    steady = summary.filter(pl.col("customer_id") == "steady").row(0, named=True)
    assert mover["overall_drift"] == pytest.approx(0.5)
    assert mover["max_axis_drift"] == 1.0
    assert mover["axes_changed"] == 1
    assert mover["severity"] == "SIGNIFICANT"
    assert mover["anomaly"] is mover_anomalous
    assert steady["overall_drift"] == pytest.approx(0.025)
    assert steady["axes_changed"] == 0
    assert steady["anomaly"] is False
    assert steady["severity"] == "STABLE"


def test_severity_counts_have_every_class() -> None:
    counts = severity_counts(_two_customers())
    assert counts.columns == ["axis", *SEVERITIES, MODEL_CHANGED]
    assert counts.filter(pl.col("axis") == "price").row(0) == ("price", 1, 0, 0, 0, 1, 0)
    assert counts.filter(pl.col("axis") == "timing").row(0) == ("timing", 2, 0, 0, 0, 0, 0)


def test_transition_counts_only_changed_segments() -> None:
    transitions = transition_counts(_two_customers())
    assert transitions.rows() == [("price", "deal_hunter", "full_price", 1)]


def test_top_movers_orders_by_overall_drift_then_id() -> None:
    summary = pl.DataFrame(
        {"customer_id": ["b", "a", "c", "d"], "overall_drift": [0.4, 0.4, 0.9, None]}
    )
    assert top_movers(summary, n=3)["customer_id"].to_list() == ["c", "a", "b"]
    assert top_movers(summary, n=10)["customer_id"].to_list() == ["c", "a", "b", "d"]


def _wide_snapshots(
    rng: np.random.Generator, customers: list[str], segments: dict[str, int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The same random snapshot twice: wide (one row per customer) and long."""
    wide = pl.DataFrame({"customer_id": customers})
    long_parts = []
    for axis, k in sorted(segments.items()):
        memberships = np.round(rng.dirichlet(np.full(k, 0.5), len(customers)), 3)
        names = [f"{axis}_{j}" for j in range(k)]
        dominant = [names[j] for j in memberships.argmax(axis=1)]
        wide = wide.with_columns(
            pl.Series(axis, memberships), pl.Series(f"{axis}__segment", dominant)
        )
        long_parts.append(
            pl.DataFrame(
                {
                    "customer_id": customers,
                    "axis": axis,
                    "memberships": memberships.tolist(),
                    "dominant_segment": dominant,
                },
                schema=_SCHEMA,
            )
        )
    return wide, pl.concat(long_parts)


@pytest.mark.parametrize("shuffled", [False, True])
def test_wide_drift_is_the_long_drift(shuffled: bool) -> None:
    rng = np.random.default_rng(7)
    before = [f"c{i:03d}" for i in range(200)]
    # The usual week keeps last week's customers first and adds new ones; a shuffled or
    # thinned one is joined by id.
    after = [*before, "c900", "c901"]
    if shuffled:
        after = [c for c in rng.permutation(after).tolist() if c != "c005"]
    previous, previous_long = _wide_snapshots(rng, before, {"price": 3, "timing": 2})
    current, current_long = _wide_snapshots(rng, after, {"price": 3, "timing": 4})
    wide = thumbprint_drift(previous, current)
    assert wide.height == len(set(before) & set(after))
    expected = axis_drift(previous_long, current_long, days_between=7)
    assert_frame_equal(
        axis_drift_long(wide, days_between=7).sort("customer_id", "axis"),
        expected.sort("customer_id", "axis"),
        check_exact=True,
    )
    assert_frame_equal(
        customer_drift_wide(wide).sort("customer_id"),
        customer_drift(expected),
        check_exact=True,
    )
    # timing went from 2 to 4 segments: a re-fit model, not a distance.
    assert wide["timing" + DRIFT_SUFFIX].null_count() == wide.height


def test_wide_drift_of_a_refitted_axis_is_model_changed() -> None:
    rng = np.random.default_rng(3)
    ids = ["a", "b", "c"]
    previous, _ = _wide_snapshots(rng, ids, {"price": 3, "timing": 2})
    current, _ = _wide_snapshots(rng, ids, {"price": 3, "timing": 2})
    long = axis_drift_long(thumbprint_drift(previous, current, refitted={"price"}), days_between=7)
    price = long.filter(pl.col("axis") == "price")
    assert price["drift"].null_count() == 3
    assert set(price["severity"]) == {MODEL_CHANGED}
    assert long.filter(pl.col("axis") == "timing")["drift"].null_count() == 0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ([0.9, 0.1], [0.8, 0.2], "MINOR"),  # exactly 0.1
        ([1.0, 0.0], [0.7, 0.3], "MODERATE"),  # exactly 0.3
        ([0.8, 0.2, 0.0], [0.3, 0.2, 0.5], "SIGNIFICANT"),  # exactly 0.5
        ([0.75, 0.25], [0.85, 0.15], "MINOR"),  # 0.1 from memberships with no exact binary form
    ],
)
def test_a_move_of_exactly_a_band_floor_is_in_the_upper_band(
    old: list[float], new: list[float], expected: str
) -> None:
    previous = _snapshot([("c1", "price", old, "a")])
    current = _snapshot([("c1", "price", new, "a")])
    row = _row(axis_drift(previous, current, days_between=7), "c1", "price")
    assert row["severity"] == expected
    wide_previous = pl.DataFrame(
        {"customer_id": ["c1"], "price": [old], "price__segment": ["a"]},
        schema_overrides={"price": pl.Array(pl.Float64, len(old))},
    )
    wide_current = wide_previous.with_columns(
        pl.Series("price", [new], dtype=pl.Array(pl.Float64, len(new)))
    )
    wide = axis_drift_long(thumbprint_drift(wide_previous, wide_current), days_between=7)
    assert wide["severity"].item() == expected
