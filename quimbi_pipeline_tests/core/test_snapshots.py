"""Snapshots: SnapshotSeries equals take_snapshot; the shapes of a snapshot agree."""

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quimbi_pipeline.core.assignment import DECIMALS
from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.core.axis_models import fit_axis_on_frame
from quimbi_pipeline.core.features import compute_customer_features
from quimbi_pipeline.core.generator import GenerateReport
from quimbi_pipeline.core.segmentation import AxisModel, SegmentationConfig
from quimbi_pipeline.core.snapshots import (
    Snapshot,
    SnapshotSeries,
    _rows_differ,
    snapshot_chains,
    take_snapshot,
)
from quimbi_pipeline_tests.datasets import ingest_to_lake

# Small, quick models: these tests compare two ways of assigning, not the models' quality.
QUICK = SegmentationConfig(k_max=3, subdivide=False)


@pytest.fixture(scope="module")
def shop_lake(
    small_shop: GenerateReport, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pl.DataFrame, pl.DataFrame]:
    root = tmp_path_factory.mktemp("snapshot_lake")
    files = [*small_shop.order_files, *small_shop.ticket_files]
    lake = ingest_to_lake(files, root / "raw", root / "orders.parquet", root / "tickets.parquet")
    return pl.read_parquet(lake.orders), pl.read_parquet(lake.tickets)


@pytest.fixture(scope="module")
def models(shop_lake: tuple[pl.DataFrame, pl.DataFrame]) -> dict[str, AxisModel]:
    features = compute_customer_features(*shop_lake).frame
    return {axis.name: fit_axis_on_frame(axis, features, config=QUICK) for axis in AXES}


def week_ends(shop: GenerateReport, weeks: range) -> list[date]:
    """For each week w, the day 7 * w + 5 days after the shop's start."""
    return [shop.start + timedelta(days=7 * w + 5) for w in weeks]


def assert_same_snapshot(actual: Snapshot, expected: Snapshot) -> None:
    assert actual.snapshot_date == expected.snapshot_date
    assert_frame_equal(actual.wide(), expected.wide(), check_exact=True)
    assert_frame_equal(actual.long(), expected.long(), check_exact=True)
    assert_frame_equal(actual.thumbprints(), expected.thumbprints(), check_exact=True)


def test_a_series_of_weekly_snapshots_equals_snapshots_taken_one_by_one(
    shop_lake: tuple[pl.DataFrame, pl.DataFrame],
    models: dict[str, AxisModel],
    small_shop: GenerateReport,
) -> None:
    orders, tickets = shop_lake
    series = SnapshotSeries(orders, tickets, models)
    # Every week from May to the year's end, then back to the spring (the series starts over).
    days = week_ends(small_shop, range(20, 53))
    days += [date(2023, 4, 1), date(2023, 4, 8), date(2023, 4, 9)]
    customers = 0
    for day in days:
        expected = take_snapshot(orders, tickets, day, models)
        assert_same_snapshot(series.take(day), expected)
        customers = max(customers, expected.customers.height)
    assert customers >= 300


def test_a_forked_series_takes_its_own_dates_on_the_shared_history(
    shop_lake: tuple[pl.DataFrame, pl.DataFrame],
    models: dict[str, AxisModel],
    small_shop: GenerateReport,
) -> None:
    orders, tickets = shop_lake
    series = SnapshotSeries(orders, tickets, models)
    early = week_ends(small_shop, range(20, 24))
    late = week_ends(small_shop, range(40, 44))
    series.take(late[0])
    twin = series.fork()
    # Taken in turns, as two threads would: neither series' dates disturb the other's.
    for mine, theirs in zip(late[1:], early, strict=False):
        assert_same_snapshot(series.take(mine), take_snapshot(orders, tickets, mine, models))
        assert_same_snapshot(twin.take(theirs), take_snapshot(orders, tickets, theirs, models))


@pytest.mark.parametrize("columns", [1, 3, 7])
def test_rows_differ_compares_every_bit_of_every_column(columns: int) -> None:
    rng = np.random.default_rng(columns)
    a = rng.normal(size=(500, columns))
    b = a.copy()
    changed = rng.choice(500, 40, replace=False)
    # One column of each changed row, by one unit in the last place or to -0.0 from 0.0.
    cols = rng.integers(0, columns, changed.size)
    b[changed, cols] = np.nextafter(b[changed, cols], np.inf)
    a[0, 0], b[0, 0] = 0.0, -0.0
    # Equal bits are equal, NaN included.
    a[1, :], b[1, :] = np.nan, np.nan
    expected = np.zeros(500, dtype=bool)
    expected[changed] = True
    expected[0], expected[1] = True, False
    np.testing.assert_array_equal(_rows_differ(a, b), expected)
    # A column selection (not contiguous) gives the same.
    wide_a, wide_b = np.hstack([a, a]), np.hstack([b, a])
    np.testing.assert_array_equal(_rows_differ(wide_a[:, :columns], wide_b[:, :columns]), expected)


def test_dates_before_any_order_are_empty(
    shop_lake: tuple[pl.DataFrame, pl.DataFrame], models: dict[str, AxisModel]
) -> None:
    series = SnapshotSeries(*shop_lake, models)
    snapshot = series.take(date(2022, 6, 1))
    assert snapshot.customers.height == 0 and snapshot.axes == {}
    assert snapshot.long().height == 0
    assert series.take(date(2023, 2, 1)).customers.height > 0


def test_thumbprints_hold_the_rounded_memberships_and_the_dominant_segment(
    shop_lake: tuple[pl.DataFrame, pl.DataFrame], models: dict[str, AxisModel]
) -> None:
    snapshot = take_snapshot(*shop_lake, date(2023, 9, 30), models)
    rows = snapshot.thumbprints()
    assert rows["customer_id"].to_list() == snapshot.customers["customer_id"].to_list()
    for i in (0, rows.height // 2, rows.height - 1):
        thumbprint = json.loads(rows["thumbprint"][i])
        dominant = json.loads(rows["dominant_segments"][i])
        assert sorted(thumbprint) == sorted(dominant) == sorted(models)
        for axis, result in snapshot.axes.items():
            memberships = np.asarray(thumbprint[axis])
            np.testing.assert_array_equal(memberships, result.memberships[i])
            np.testing.assert_array_equal(memberships, np.round(memberships, DECIMALS))
            assert memberships.sum() == pytest.approx(1.0, abs=len(memberships) * 10**-DECIMALS)
            # The dominant segment holds the largest membership (ties after rounding allowed).
            names = models[axis].segment_names
            assert memberships[names.index(dominant[axis])] == memberships.max()


def test_wide_and_long_shapes_hold_the_same_memberships(
    shop_lake: tuple[pl.DataFrame, pl.DataFrame], models: dict[str, AxisModel]
) -> None:
    snapshot = take_snapshot(*shop_lake, date(2023, 6, 30), models)
    wide, long = snapshot.wide(), snapshot.long()
    assert long.height == wide.height * len(models)
    axis = "price_sensitivity"
    from_long = long.filter(pl.col("axis") == axis).sort("customer_id")
    np.testing.assert_array_equal(
        np.vstack(from_long["memberships"].to_list()), wide[axis].to_numpy()
    )
    assert from_long["dominant_segment"].to_list() == wide[f"{axis}__segment"].to_list()


def _weeks(first: date, count: int) -> list[date]:
    return [first + timedelta(weeks=i) for i in range(count)]


def test_a_long_backfill_is_split_in_two_runs_of_balanced_work() -> None:
    rest, first = _weeks(date(2024, 1, 6), 30), _weeks(date(2024, 8, 3), 8)
    # Work grows with the date, as the number of customers does.
    weight = {day: float(i + 1) for i, day in enumerate(rest + first)}
    later, earlier = snapshot_chains(first, rest, weight.__getitem__)
    # The dates written to PostgreSQL start the first run; every date is taken exactly once,
    # each run rising except for the one step back from those dates to the rest.
    assert later[: len(first)] == first
    assert sorted(later + earlier) == sorted(first + rest)
    assert earlier == sorted(earlier) and later[len(first) :] == sorted(later[len(first) :])
    assert max(earlier) < min(later[len(first) :])
    work = [sum(weight[d] for d in run) for run in (later, earlier)]
    assert abs(work[0] - work[1]) <= max(weight.values())


@pytest.mark.parametrize(
    ("first", "rest", "chains"),
    [
        (_weeks(date(2024, 8, 3), 8), _weeks(date(2024, 1, 6), 30), 1),  # one thread asked
        (_weeks(date(2024, 8, 3), 8), [], 2),  # nothing before the stored dates
        (_weeks(date(2024, 8, 3), 2), _weeks(date(2024, 1, 6), 4), 2),  # too few dates
        # Mostly stored dates: the second run would hold only 2, each a full computation.
        (_weeks(date(2024, 8, 3), 10), _weeks(date(2024, 7, 20), 2), 2),
    ],
)
def test_short_or_single_threaded_backfills_stay_one_run(first, rest, chains) -> None:
    assert snapshot_chains(first, rest, lambda day: 1.0, chains) == [first + rest]
